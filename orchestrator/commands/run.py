"""`edgebench run`: parse options, hold the machine's measurement lock, run a session, print."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from orchestrator.errors import UserError
from orchestrator.sampling.select import GPU_SAMPLERS
from orchestrator.sampling.select import describe as describe_sampler

EXIT_CODES_HELP = """\b
Exit codes: 0 every query ok; 1 an error before or outside the queries (the message says the
fix); 2 a malformed command line; 3 the run finished but some queries failed; 4 another
measurement holds this machine; 128+N stopped by signal N (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP)."""

# Options that shape what a run measures: given with --resume they would silently not apply.
RUN_SHAPING = ("workload", "model", "binary", "out", "limit", "categories", "seed", "threads", "n_gpu_layers",
               "interval_s", "gpu_sampler", "idle_timeout_s", "timeout_s", "memory_check", "ignore_eos", "warmup",
               "repeat", "idle_window_s")


def line_for(record: dict, i: int, total: int) -> str:
    tag = "" if record.get("phase", "measure") == "measure" else f" ({record['phase']})"
    rep = f" #{record['repetition'] + 1}" if record.get("repetition") else ""
    head = f"[{i}/{total}] {record['query_id']}{rep}{tag}"
    if record["status"] != "ok":
        return f"{head} {record['status']}: {record.get('error')}"
    v = record.get("validation", {})
    return (f"{head} ok ttft={record.get('ttft_s', 0) * 1000:.0f}ms "
            f"tpot={(record.get('tpot_s') or 0) * 1000:.1f}ms out={record.get('output_tokens')} "
            f"rss={(record.get('peak_rss_bytes') or 0) / 1e6:.0f}MB{'' if v.get('ok') else ' VALIDATION-FLAGGED'}")


def run_with_progress(session) -> object:
    """A progress bar with ETA on a terminal; one line per query under cron."""
    todo = len(session.pending())
    if sys.stdout.isatty():
        with click.progressbar(length=todo, label="queries", show_eta=True, show_pos=True,
                               item_show_func=lambda r: r and r["query_id"]) as bar:
            def report(rec, i, total):
                bar.update(1, rec)
                if rec["status"] != "ok":
                    click.echo("\n" + line_for(rec, i, total))
            return session.run(report)
    return session.run(lambda r, i, n: click.echo(line_for(r, i, n)))


def show(session, result) -> None:
    """The per-category table and the summary page."""
    from orchestrator import summary

    rows = summary.rows_for(result.records)
    click.echo("\n" + summary.terminal_table(rows))
    html = summary.write_html(session.store, rows, result.records)
    click.echo(f"\nreport: {html}")
    click.echo(f"figures, CSV and Parquet: {report_hint(session.store.dir)}")


def report_hint(run_dir) -> str:
    """The report command for this run as it can be typed here (after `make run`, edgebench is in
    .venv/bin, not on PATH), preceded by the install of the report extra when it is missing."""
    import shlex

    from orchestrator import extras

    render = f"{extras.self_command()} report {shlex.quote(str(run_dir))}"
    return f"{extras.install_command('report')}, then {render}" if extras.missing("report") else render


def finish(session, result) -> None:
    """The per-category table and the summary page; then exit with what happened."""
    show(session, result)
    if result.n_failed:
        click.echo(f"{result.n_failed} of {len(result.records)} query attempts failed (exit 3)", err=True)
    sys.exit(result.exit_code)


def config_from_options(*, binary, model, workload, out, seed, threads, n_gpu_layers, ignore_eos, interval_s,
                        idle_timeout_s, timeout_s, limit, categories, memory_check, gpu_sampler=None,
                        idle_window_s=2.0, **_):
    """The RunConfig that `run`'s options describe (`edgebench batch` parses the same options)."""
    from orchestrator import paths
    from orchestrator import session as sess
    from orchestrator.config import RunConfig

    # absolute paths: the manifest is what --resume reads back, maybe from another directory
    return RunConfig(
        binary=(binary or sess.default_binary()).absolute(),
        model=(model or sess.default_model()).absolute(),
        workload=(workload or sess.default_workload()).absolute(),
        out_dir=(out or paths.reports_dir()).absolute(), seed=seed,
        **({"threads": threads} if threads else {}), n_gpu_layers=n_gpu_layers, ignore_eos=ignore_eos,
        interval_s=interval_s, gpu_sampler=gpu_sampler, idle_timeout_s=idle_timeout_s, timeout_s=timeout_s,
        limit=limit, categories=tuple(categories), memory_check=memory_check, idle_window_s=idle_window_s,
    )


@click.command(epilog=EXIT_CODES_HELP)
@click.option("--workload", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="JSONL workload (default: the 50 shipped queries, orchestrator/data/workloads/default.jsonl).")
@click.option("--model", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="GGUF model (default: the one bootstrap set up).")
@click.option("--binary", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="llama.cpp main (default: build/llama.cpp/main).")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Folder that receives the run folder (default: reports/).")
@click.option("--resume", type=click.Path(path_type=Path, file_okay=False, exists=True), default=None,
              help="Finish an interrupted run: reports/<run_id>.")
@click.option("--force", is_flag=True,
              help="With --resume: resume although the binary, model, workload or machine changed (recorded).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Queries per category.")
@click.option("--category", "categories", multiple=True, help="Only this category (repeatable).")
@click.option("--warmup", type=click.IntRange(min=0), default=0, show_default=True,
              help="Warm-up runs per query, recorded as phase 'warmup' and left out of statistics.")
@click.option("--repeat", type=click.IntRange(min=1), default=1, show_default=True,
              help="Measured repetitions per query.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--threads", "-t", type=click.IntRange(min=1), default=None, help="main -t (default: all cores).")
@click.option("--ngl", "n_gpu_layers", type=click.IntRange(min=0), default=None,
              help="Layers to offload to the GPU (main -ngl); default: none passed, as the study did.")
@click.option("--interval", "interval_s", type=click.FloatRange(min=0.001), default=0.5, show_default=True,
              help="Process sampling interval, seconds.")
@click.option("--gpu-sampler", type=click.Choice(GPU_SAMPLERS), default=None,
              help="GPU/board telemetry source (default: jtop, tegrastats, sysfs or nvml, the first this machine "
                   "offers, else none).")
@click.option("--idle-timeout", "idle_timeout_s", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
              help="Kill a query that prints nothing for this many seconds.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0.1), default=600.0, show_default=True,
              help="Kill a query that runs longer than this many seconds.")
@click.option("--no-memory-check", "memory_check", flag_value=False, default=True,
              help="Run a model larger than the available memory anyway (it will page from disk).")
@click.option("--idle-window", "idle_window_s", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="Seconds the GPU/board sampler watches the idle board before the first query, for energy net "
                   "of idle power; 0 skips it.")
@click.option("--ignore-eos/--stop-at-eos", default=None,
              help="Default: --ignore-eos for a synthetic twin (its text is noise), stop at EOS otherwise.")
@click.pass_context
def run(ctx, workload, model, binary, out, resume, force, limit, categories, warmup, repeat, seed, threads,
        n_gpu_layers, interval_s, gpu_sampler, idle_timeout_s, timeout_s, memory_check, ignore_eos, idle_window_s):
    """Run a workload: one llama.cpp `main` per query, measured, written as it goes."""
    from orchestrator import session as sess
    from orchestrator.interrupts import exit_on_signals
    from orchestrator.measurelock import measuring

    if force and not resume:
        raise click.UsageError("--force only applies to --resume")
    if resume:
        given = [p.opts[0] for p in ctx.command.params if p.name in RUN_SHAPING
                 and ctx.get_parameter_source(p.name) not in (click.core.ParameterSource.DEFAULT, None)]
        if given:
            raise UserError(f"{', '.join(given)} would change the run being resumed, so it is not applied",
                            fix=f"edgebench run --resume {resume} alone, or start a new run with those options")
    exit_on_signals()
    try:
        with measuring(log=click.echo) as lock:
            if resume:
                session = sess.Session.resume(resume, force=force, log=click.echo)
                click.echo(f"resuming {session.store.dir}: {len(session.items) - len(session.pending())} of "
                           f"{len(session.items)} measurements already recorded")
            else:
                cfg = config_from_options(**ctx.params)
                session = sess.Session.create(cfg, warmup=warmup, repeat=repeat, log=click.echo)
            lock.set_run_dir(session.store.dir)
            for w in session.warnings():
                click.echo(f"warning: {w}", err=True)
            for smp in session.samplers:
                if smp.kind == "gpu":
                    click.echo(describe_sampler(smp))
            synthetic = session.prep.model_info["synthetic"]
            click.echo(f"run {session.store.dir}: {len(session.pending())} measurements, model "
                       f"{session.cfg.model.name}{' (synthetic twin, --ignore-eos)' if synthetic else ''}")
            result = run_with_progress(session)
            finish(session, result)
    except KeyboardInterrupt:
        click.echo("interrupted (Ctrl-C): what was recorded stays; finish it with --resume", err=True)
        sys.exit(130)
