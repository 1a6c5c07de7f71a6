"""`edgebench run`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from orchestrator import paths
from orchestrator.config import RunConfig
from orchestrator.errors import UserError


def default_binary() -> Path:
    return paths.build_dir() / "llama.cpp" / "main"


def default_model() -> Path:
    from orchestrator.bootstrap.ledger import Ledger

    entry = Ledger(paths.build_dir() / "ledger.json").get("model")
    if not entry:
        raise UserError("no model has been set up in this checkout", fix="make bootstrap, or --model PATH")
    return Path(entry["path"])


def _line(record: dict, i: int, total: int) -> str:
    if record["status"] != "ok":
        return f"[{i}/{total}] {record['query_id']} {record['status']}: {record.get('error')}"
    v = record.get("validation", {})
    return (f"[{i}/{total}] {record['query_id']} ok ttft={record.get('ttft_s', 0) * 1000:.0f}ms "
            f"tpot={(record.get('tpot_s') or 0) * 1000:.1f}ms out={record.get('output_tokens')} "
            f"rss={(record.get('peak_rss_bytes') or 0) / 1e6:.0f}MB{'' if v.get('ok') else ' VALIDATION-FLAGGED'}")


@click.command()
@click.option("--workload", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="JSONL workload (default: workloads/default.jsonl).")
@click.option("--model", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="GGUF model (default: the one bootstrap set up).")
@click.option("--binary", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="llama.cpp main (default: build/llama.cpp/main).")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Folder that receives the run folder (default: reports/).")
@click.option("--resume", type=click.Path(path_type=Path, file_okay=False, exists=True), default=None,
              help="Finish an interrupted run: reports/<run_id>.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Queries per category.")
@click.option("--category", "categories", multiple=True, help="Only this category (repeatable).")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--threads", "-t", type=click.IntRange(min=1), default=None, help="main -t (default: all cores).")
@click.option("--ngl", "n_gpu_layers", type=click.IntRange(min=0), default=None,
              help="Layers to offload to the GPU (main -ngl); default: none passed, as the study did.")
@click.option("--interval", "interval_s", type=click.FloatRange(min=0.001), default=0.5, show_default=True,
              help="Process sampling interval, seconds.")
@click.option("--idle-timeout", "idle_timeout_s", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
              help="Kill a query that prints nothing for this many seconds.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0.1), default=600.0, show_default=True,
              help="Kill a query that runs longer than this many seconds.")
@click.option("--no-memory-check", "memory_check", flag_value=False, default=True,
              help="Run a model larger than the available memory anyway (it will page from disk).")
@click.option("--ignore-eos/--stop-at-eos", default=None,
              help="Default: --ignore-eos for a synthetic twin (its text is noise), stop at EOS otherwise.")
def run(workload, model, binary, out, resume, limit, categories, seed, threads, n_gpu_layers, interval_s,
        idle_timeout_s, timeout_s, memory_check, ignore_eos):
    """Run a workload: one llama.cpp `main` per query, measured, written as it goes."""
    import signal

    from orchestrator import runner, summary
    from orchestrator.sampling.process import ProcessSampler
    from orchestrator.store import RunStore, new_run_id

    # cron's timeout and systemd stop with SIGTERM: turn it into an exception so the query in
    # flight has its process group killed on the way out (what is recorded stays recorded)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if resume:
        store = RunStore.open(resume)
        cfg = runner.config_from_manifest(store.manifest, resume.parent)
        click.echo(f"resuming {store.dir}: {len(store.done_ids())} queries already recorded")
    else:
        # absolute paths: the manifest is what --resume reads back, maybe from another directory
        cfg = RunConfig(
            binary=(binary or default_binary()).absolute(), model=(model or default_model()).absolute(),
            workload=(workload or paths.project_root() / "workloads" / "default.jsonl").absolute(),
            out_dir=(out or paths.reports_dir()).absolute(), seed=seed,
            **({"threads": threads} if threads else {}), n_gpu_layers=n_gpu_layers, ignore_eos=ignore_eos,
            interval_s=interval_s, idle_timeout_s=idle_timeout_s, timeout_s=timeout_s, limit=limit,
            categories=tuple(categories), memory_check=memory_check,
        )
    prep = runner.prepare(cfg)
    if resume:
        from orchestrator.net import sha256_file

        if sha256_file(cfg.workload) != store.manifest["workload"]["sha256"]:
            raise UserError(f"{cfg.workload} changed since this run started, so its queries may differ",
                            fix="start a new run: edgebench run (without --resume)")
    else:
        run_id = new_run_id()
        store = RunStore.create(cfg.out_dir / run_id, runner.manifest_for(cfg, prep, run_id))
    with store.lock():
        todo = len(runner.pending(prep, store))
        click.echo(f"run {store.dir}: {todo} queries, model {cfg.model.name}"
                   f"{' (synthetic twin, --ignore-eos)' if prep.model_info['synthetic'] else ''}")

        def make_samplers():
            return [ProcessSampler(cfg.interval_s)]

        if sys.stdout.isatty():
            with click.progressbar(length=todo, label="queries", show_eta=True, show_pos=True,
                                   item_show_func=lambda r: r and r["query_id"]) as bar:
                def report(rec, i, total):
                    bar.update(1, rec)
                    if rec["status"] != "ok":
                        click.echo("\n" + _line(rec, i, total))
                runner.execute(cfg, prep, store, make_samplers, report)
        else:
            runner.execute(cfg, prep, store, make_samplers, lambda r, i, n: click.echo(_line(r, i, n)))
        records = store.read_queries()
        store.update_manifest(status="finished", finished_at=runner._now(), n_queries=len(records),
                              n_failed=sum(1 for r in records if r["status"] != "ok"),
                              harness=dict(store.manifest.get("harness", {}), **runner.harness_usage()))
        rows = summary.rows_for(records)
        click.echo("\n" + summary.terminal_table(rows))
        html = summary.write_html(store, rows, records)
    click.echo(f"\nreport: {html}")
