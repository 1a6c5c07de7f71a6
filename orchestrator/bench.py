"""`edgebench bench`: what edgebench itself costs and how exact its stream timings are, each
figure measured against its baseline in the same run (reports/bench/bench.json)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

from orchestrator.measurelock import LENT_ENV

TARGETS = {
    "overhead_ratio": 1.03,
    "tbt_mean_rel_err": 0.02,
    "prefill_abs_err_ms": 5.0,
    "harness_cpu_pct_500ms": 2.0,
    "harness_cpu_pct_10ms": 10.0,
    "harness_rss_bytes": 60e6,
    "report_render_s": 20.0,
    "report_peak_rss_bytes": 1e9,
    # the same render at 10 000 queries; a page that opens quickly through an SSH tunnel from a board
    "report_10k_render_s": 20.0,
    "report_10k_peak_rss_bytes": 1e9,
    "report_10k_page_bytes": 5e6,
    "report_10k_query_page_bytes": 5e6,
}
# Every other engine built here is held to main's targets for these (its name prefixes the figure).
ENGINE_FIGURES = ("overhead_ratio", "tbt_mean_rel_err", "prefill_abs_err_ms")
# GPU/board samplers against recorded input: % of one core at each interval.
SAMPLER_TARGETS = {"10ms": 10.0, "500ms": 2.0}
COMMAND = "make bench"
# Wall times vary by tens of percent from run to run on a small board or VM: many short pairs
# pin the median down better than a few long ones.
OVERHEAD_CATEGORIES = ("simple", "conversational", "complex")


def _session(cfg, queries, work: Path, interval_s: float, label: str, reps: int = 1):
    """A session over `queries`, `reps` measured repetitions each, in a scratch run folder:
    bench measures through exactly the code path `edgebench run` uses. Repetitions go round
    the queries (q1 q2 q3 q1 q2 q3 ...) so that a drift of the machine spreads over all of them."""
    from dataclasses import replace

    from orchestrator.planning import Item
    from orchestrator.session import Session

    ids = {q.id for q in queries}
    return Session.create(replace(cfg, interval_s=interval_s, out_dir=work),
                          items_for=lambda qs: [Item(q, repetition=r) for r in range(reps) for q in qs if q.id in ids],
                          run_dir=work / label, log=lambda s: None)


def _pairs(cfg, queries, reps: int, work: Path, label: str) -> tuple[list[float], list[float]]:
    """Interleaved pairs: each item run bare by its engine (engine/base.py bare()), then measured
    through the session: (bare seconds, through seconds)."""
    bare, through = [], []
    pairs = _session(cfg, queries, work, 0.5, label, reps)
    with pairs.store.lock():
        try:
            for item in pairs.items:
                bare.append(pairs.bare_s(item, Path(tempfile.mkdtemp(dir=work))))
                started = time.perf_counter()
                _ok(pairs.run_one(item))
                through.append(time.perf_counter() - started)
        finally:
            pairs.close()
    return bare, through


def other_engines(cfg) -> list[tuple[str, Path]]:
    """The engines besides the run's whose program is built: beside the run's binary (a33e6a0's
    server), or where bootstrap puts it (today's llama.cpp)."""
    from orchestrator import runfacts
    from orchestrator.engine import registry

    out = []
    for name in registry.NAMES:
        if name == cfg.engine:
            continue
        found = [p for p in (registry.program_beside(cfg.binary, name), runfacts.default_binary(name)) if p.is_file()]
        if found:
            out.append((name, found[0]))
    return out


def _engine_figures(cfg, name: str, program: Path, short, queries, reps: int, work: Path) -> dict:
    """Another engine's fidelity, with main's targets: the harness against the engine run bare,
    and the stream's timings against the engine's own."""
    from dataclasses import replace

    ecfg = replace(cfg, engine=name, binary=program)
    bare, through = _pairs(ecfg, short, reps, work, f"{name}-overhead-pairs")
    recs = [_ok(r) for r in _session(ecfg, queries, work, 0.5, f"{name}-sampling-500ms").run().records]
    return {
        f"{name}_overhead_ratio": (statistics.median(through) / statistics.median(bare),
                                   (f"median wall time of the same queries run bare by {name}, s",
                                    statistics.median(bare))),
        f"{name}_tbt_mean_rel_err": (statistics.median(r["validation"]["tbt_mean_rel_err"] for r in recs),
                                     (f"median TPOT under {name}, s", statistics.median(r["tpot_s"] for r in recs))),
        f"{name}_prefill_abs_err_ms": (statistics.median(r["validation"]["prefill_abs_err_ms"] for r in recs),
                                       (f"median TTFT under {name}, ms",
                                        1000 * statistics.median(r["ttft_s"] for r in recs))),
    }


def _ok(rec: dict) -> dict:
    if rec["status"] != "ok":
        raise click.ClickException(f"bench query {rec['query_id']} failed: {rec.get('error')}")
    return rec


def measure(cfg, reps: int, work: Path, log=click.echo) -> dict:
    from orchestrator.session import prepare

    firsts = {}
    for q in prepare(cfg).queries:
        firsts.setdefault(q.category, q)
    queries = list(firsts.values())

    short = [q for q in queries if q.category in OVERHEAD_CATEGORIES]
    log(f"[1/8] overhead: {reps} interleaved pairs (bare {cfg.engine}, then through edgebench) on {len(short)} "
        "queries")
    bare, through = _pairs(cfg, short, reps, work, "overhead-pairs")
    log("[2/8] harness CPU while sampling every 500 ms")
    slow = [_ok(r) for r in _session(cfg, queries, work, 0.5, "sampling-500ms").run().records]
    log("[3/8] harness CPU while sampling every 10 ms")
    fast = [_ok(r) for r in _session(cfg, queries, work, 0.01, "sampling-10ms").run().records]
    log("[4/8] harness RSS: a real `edgebench run` process")
    rss, main_rss = _harness_rss(cfg, work)
    log("[5/8] report: render replayed runs of 500 and 10 000 queries (report/replay.py) in a child process")
    report, read_s, run_bytes = _report_figures(work)
    log("[6/8] GPU/board samplers' own CPU on recorded input, against the process sampler's")
    samplers = _sampler_figures()
    engines = other_engines(cfg)
    log(f"[7/8] the other engines built here ({', '.join(n for n, _ in engines) or 'none'}): {reps} pairs each, "
        "and their stream timings against their own")
    engine_figures = {}
    for name, program in engines:
        engine_figures.update(_engine_figures(cfg, name, program, short, queries, reps, work))
    log("[8/8] the load client: its CPU per request and send lag at the highest rate of a short sweep "
        "(orchestrator/load/benchfig.py)")
    from orchestrator.load import benchfig

    engine_figures.update(benchfig.figures(cfg, work))

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
        "report_render_s": (report["report_render_s"],
                            ("reading the same run folder with the stdlib reader, s", read_s)),
        "report_peak_rss_bytes": (report["report_peak_rss_bytes"], ("the run folder's size on disk, bytes", run_bytes)),
        **_scale_figures(report),
        **engine_figures,
    }
    from orchestrator.load.benchfig import TARGETS as LOAD_TARGETS

    targets = {**TARGETS, **LOAD_TARGETS}
    for name, _ in engines:
        targets.update({f"{name}_{fig}": TARGETS[fig] for fig in ENGINE_FIGURES})
    for name, (value, baseline, label) in samplers.items():
        figures[name] = (value, (f"the process sampler at {label}, % of one core", baseline))
        targets[name] = SAMPLER_TARGETS[label]
    out = {}
    for name, (value, (base_name, base)) in figures.items():
        out[name] = {"value": value, "target": targets[name], "ok": value <= targets[name],
                     "baseline": {"what": base_name, "value": base},
                     "ratio_to_baseline": value / base if base else None, "command": COMMAND}
    ratios = [t / b for t, b in zip(through, bare, strict=True)]
    return {"figures": out, "queries": [q.id for q in queries], "reps": reps,
            "overhead_pairs": {"bare_s": bare, "through_s": through,
                               "median_of_pair_ratios": statistics.median(ratios)},
            "samples_at_10ms": [r["n_samples"] for r in fast]}


def _sampler_figures() -> dict:
    """{figure: (value, baseline, interval label)}: each GPU sampler's CPU cost, with the psutil
    process sampler's cost on a child of the same length as the baseline."""
    from orchestrator.sampling.cost import INTERVALS, cpu_pct, sampler_cpu_figures
    from orchestrator.sampling.process import ProcessSampler

    baseline = {label: cpu_pct(ProcessSampler(interval), 2.0) for label, interval in INTERVALS.items()}
    return {name: (value, baseline[name.rsplit("_", 1)[1]], name.rsplit("_", 1)[1])
            for name, value in sampler_cpu_figures().items()}


def _scale_figures(report: dict) -> dict:
    """The 10 000-query render against the 500-query one of the same bench: the ratio says how
    rendering grows with a run (20 times the queries)."""
    n = report["report_queries"]
    return {
        "report_10k_render_s": (report["report_10k_render_s"],
                                (f"rendering {n} queries, s", report["report_render_s"])),
        "report_10k_peak_rss_bytes": (report["report_10k_peak_rss_bytes"],
                                      (f"rendering {n} queries, peak RSS bytes", report["report_peak_rss_bytes"])),
        "report_10k_page_bytes": (report["report_10k_page_bytes"], (f"report.html of {n} queries, bytes",
                                                                    report["report_page_bytes"])),
        "report_10k_query_page_bytes": (report["report_10k_query_page_bytes"],
                                        ("all its per-query pages together, bytes",
                                         report["report_10k_query_pages_total_bytes"])),
    }


def _report_figures(work: Path) -> tuple[dict, float, int]:
    """The report's render time and memory (a child process), with the cost of merely reading the
    same folder as the baseline: what polars, plotnine and Jinja2 add on top of the data; then the
    same at 10 000 queries."""
    from orchestrator.report.benchfig import page_bytes, report_bench_figures, report_scale_figures
    from orchestrator.store import RunReader

    figures = report_bench_figures(work)
    figures["report_page_bytes"] = page_bytes(work / "report-bench-run")["page"]
    figures.update(report_scale_figures(work))
    run = work / "report-bench-run"
    started = time.perf_counter()
    reader = RunReader(run)
    reader.queries(), reader.samples()
    read_s = time.perf_counter() - started
    size = sum(p.stat().st_size for p in run.rglob("*") if p.is_file())
    return figures, read_s, size


def _harness_rss(cfg, work: Path) -> tuple[int, int]:
    """The measuring process's own peak RSS, as recorded by a real `edgebench run`."""
    out = work / "runs"
    cmd = [sys.executable, "-m", "orchestrator", "run", "--binary", str(cfg.binary), "--model", str(cfg.model),
           "--workload", str(cfg.workload), "--reports-dir", str(out), "--limit", "1", "--category", "simple"]
    env = dict(os.environ, PYTHONUNBUFFERED="1", **{LENT_ENV: str(os.getpid())})  # it measures under our lock
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    run_dir = sorted(out.iterdir())[-1]
    from orchestrator.store import RunReader

    reader = RunReader(run_dir)
    return reader.manifest["harness"]["peak_rss_bytes"], max(r.get("peak_rss_bytes") or 0 for r in reader.queries())
