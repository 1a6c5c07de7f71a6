"""`edgebench bench`: what edgebench itself costs and how exact its stream timings are, each
figure measured against its baseline in the same run (reports/bench/bench.json)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

from orchestrator import paths

TARGETS = {
    "overhead_ratio": 1.03,
    "tbt_mean_rel_err": 0.02,
    "prefill_abs_err_ms": 5.0,
    "harness_cpu_pct_500ms": 2.0,
    "harness_cpu_pct_10ms": 10.0,
    "harness_rss_bytes": 60e6,
}
COMMAND = "make bench"
# Wall times vary by tens of percent from run to run on a small board or VM: many short pairs
# pin the median down better than a few long ones.
OVERHEAD_CATEGORIES = ("simple", "conversational", "complex")


def _engine_pass(cfg, prep, queries, interval_s, work: Path) -> list[dict]:
    from orchestrator.engine.query import run_query
    from orchestrator.runner import prompt_tokens_for
    from orchestrator.sampling.process import ProcessSampler

    out = []
    for q in queries:
        raw = Path(tempfile.mkdtemp(dir=work))
        started = time.perf_counter()
        rec, samples = run_query(cfg, q, "bench", raw, prep.pieces, prep.n_ctx_train,
                                 prompt_tokens_for(q, prep, cfg.model), prep.ignore_eos, [ProcessSampler(interval_s)])
        rec["wall_s"] = time.perf_counter() - started
        rec["n_samples"] = len(samples.get("process", []))
        if rec["status"] != "ok":
            raise click.ClickException(f"bench query {q.id} failed: {rec.get('error')}")
        out.append(rec)
    return out


def _bare(argv: list[str], work: Path) -> float:
    cwd = Path(tempfile.mkdtemp(dir=work))
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def measure(cfg, reps: int, work: Path, log=click.echo) -> dict:
    from orchestrator import runner
    from orchestrator.engine.argv import build_argv, ctx_size_for

    prep = runner.prepare(cfg)
    firsts = {}
    for q in prep.queries:
        firsts.setdefault(q.category, q)
    queries = list(firsts.values())

    short = [q for q in queries if q.category in OVERHEAD_CATEGORIES]
    log(f"[1/4] overhead: {reps} interleaved pairs (bare main, then through edgebench) on {len(short)} queries")
    bare, through = [], []
    for _ in range(reps):
        for q in short:
            n_prompt = runner.prompt_tokens_for(q, prep, cfg.model)
            ld = Path(tempfile.mkdtemp(dir=work))
            argv = build_argv(cfg, q.prompt, q.max_tokens, ctx_size_for(n_prompt, q.max_tokens, cfg.ctx_min), ld,
                              prep.ignore_eos)
            bare.append(_bare(argv, work))
            through.append(_engine_pass(cfg, prep, [q], 0.5, work)[0]["wall_s"])
    log("[2/4] harness CPU while sampling every 500 ms")
    slow = _engine_pass(cfg, prep, queries, 0.5, work)
    log("[3/4] harness CPU while sampling every 10 ms")
    fast = _engine_pass(cfg, prep, queries, 0.01, work)
    log("[4/4] harness RSS: a real `edgebench run` process")
    rss, main_rss = _harness_rss(cfg, work)

    def cpu_pct(recs):
        return 100 * sum(r["harness_cpu_s"] for r in recs) / sum(r["total_s"] for r in recs)

    recs = slow + fast
    tbt_err = statistics.median(r["validation"]["tbt_mean_rel_err"] for r in recs)
    prefill_err = statistics.median(r["validation"]["prefill_abs_err_ms"] for r in recs)
    tpot = statistics.median(r["tpot_s"] for r in recs)
    ttft = statistics.median(r["ttft_s"] for r in recs)
    figures = {
        "overhead_ratio": (statistics.median(through) / statistics.median(bare),
                           ("median wall time of the same argv run bare, s", statistics.median(bare))),
        "tbt_mean_rel_err": (tbt_err, ("median TPOT, s", tpot)),
        "prefill_abs_err_ms": (prefill_err, ("median TTFT, ms", ttft * 1000)),
        "harness_cpu_pct_500ms": (cpu_pct(slow), ("main's decode pace, tokens/s", 1 / tpot)),
        "harness_cpu_pct_10ms": (cpu_pct(fast), ("harness CPU at 500 ms, %", cpu_pct(slow))),
        "harness_rss_bytes": (rss, ("peak RSS of the main child, bytes", main_rss)),
    }
    out = {}
    for name, (value, (base_name, base)) in figures.items():
        out[name] = {"value": value, "target": TARGETS[name], "ok": value <= TARGETS[name],
                     "baseline": {"what": base_name, "value": base},
                     "ratio_to_baseline": value / base if base else None, "command": COMMAND}
    ratios = [t / b for t, b in zip(through, bare, strict=True)]
    return {"figures": out, "queries": [q.id for q in queries], "reps": reps,
            "overhead_pairs": {"bare_s": bare, "through_s": through,
                               "median_of_pair_ratios": statistics.median(ratios)},
            "samples_at_10ms": [r["n_samples"] for r in fast]}


def _harness_rss(cfg, work: Path) -> tuple[int, int]:
    """The measuring process's own peak RSS, as recorded by a real `edgebench run`."""
    out = work / "runs"
    cmd = [sys.executable, "-m", "orchestrator", "run", "--binary", str(cfg.binary), "--model", str(cfg.model),
           "--workload", str(cfg.workload), "--out", str(out), "--limit", "1", "--category", "simple"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    run_dir = sorted(out.iterdir())[-1]
    from orchestrator.store import RunStore

    store = RunStore.open(run_dir)
    return store.manifest["harness"]["peak_rss_bytes"], max(r.get("peak_rss_bytes") or 0 for r in store.read_queries())


@click.command()
@click.option("--reps", type=click.IntRange(min=1), default=6, show_default=True,
              help="Interleaved bare/edgebench pairs per query for overhead_ratio.")
@click.option("--model", type=click.Path(path_type=Path, dir_okay=False), default=None)
@click.option("--binary", type=click.Path(path_type=Path, dir_okay=False), default=None)
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Default: reports/bench/bench.json.")
def bench(reps, model, binary, out):
    """Measure edgebench's overhead, timing accuracy, CPU and memory on the bootstrapped model."""
    from orchestrator.config import RunConfig
    from orchestrator.run_cli import default_binary, default_model

    cfg = RunConfig(binary=binary or default_binary(), model=model or default_model(),
                    workload=paths.project_root() / "workloads" / "default.jsonl", out_dir=paths.reports_dir())
    out = out or paths.reports_dir() / "bench" / "bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgebench-bench-") as tmp:
        result = measure(cfg, reps, Path(tmp))
    result.update(model=str(cfg.model), binary=str(cfg.binary))
    out.write_text(json.dumps(result, indent=2))
    click.echo(f"\n{'figure':<24}{'value':>14}{'target':>12}  {'ok':<4}{'ratio':>9}  baseline")
    for name, f in result["figures"].items():
        ratio = "-" if f["ratio_to_baseline"] is None else f"{f['ratio_to_baseline']:.4g}"
        click.echo(f"{name:<24}{f['value']:>14.4g}{f['target']:>12.4g}  {'yes' if f['ok'] else 'NO':<4}{ratio:>9}"
                   f"  {f['baseline']['what']} = {f['baseline']['value']:.4g}")
    click.echo(f"\ncommand: {COMMAND}   (written to {out})")
