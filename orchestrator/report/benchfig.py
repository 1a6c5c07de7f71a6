"""The report's speed figures for `make bench`: render a run of 500 queries (100 per category, 0.5 s
samples, one 10 ms series per category) written by the real session on a replayed Nano
(report/replay.py), in a child process, and measure its wall time and peak RSS (from wait4, the
kernel's high-water mark of the child); and the same at 10 000 queries, with the bytes of the page
and of the largest per-query page beside it.
`python -m orchestrator.report.benchfig [QUERIES]` measures the scale figure alone."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from orchestrator.store import MANIFEST, QUERY_PAGE

PER_CATEGORY = 100
INTERVAL_S = 0.5
GRANULAR_S = 0.01
# 10 000 queries: a long nightly run, or the 500-query study repeated 20 times.
SCALE_PER_CATEGORY = 2000
SCALE_COMMAND = f".venv/bin/python -m orchestrator.report.benchfig {SCALE_PER_CATEGORY * 5}"
_CHILD = "import sys; from orchestrator.report.render import render; render(sys.argv[1])"


def render_in_child(run: Path) -> tuple[float, int]:
    """Wall seconds and peak RSS bytes of rendering `run` in a fresh interpreter."""
    # stderr to a file, not a pipe: a chatty child must not block on a full pipe while we wait4
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(run)], stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            tail = err.read().decode("utf-8", "replace")[-2000:]
            raise RuntimeError(f"rendering the bench run failed (exit {proc.returncode}): {tail}")
    return elapsed, usage.ru_maxrss * 1024


def _generated(run: Path, per_category: int) -> Path:
    from orchestrator.report import replay

    if not (run / MANIFEST).is_file():
        replay.make_run(run, per_category=per_category, interval_s=INTERVAL_S, granular_s=GRANULAR_S, seed=11)
    return run


def report_bench_figures(work: Path) -> dict:
    from orchestrator.report import replay

    run = _generated(Path(work) / "report-bench-run", PER_CATEGORY)
    elapsed, peak = render_in_child(run)
    return {"report_render_s": elapsed, "report_peak_rss_bytes": peak,
            "report_queries": PER_CATEGORY * len(replay.CATEGORIES)}


def page_bytes(run: Path) -> dict:
    """report.html's bytes, the largest per-query page's and all of them together."""
    from orchestrator.report.render import REPORT

    pages = [p.stat().st_size for p in Path(run).glob(QUERY_PAGE.format("*"))]
    return {"page": (Path(run) / REPORT).stat().st_size, "query_page_max": max(pages, default=0),
            "query_pages": sum(pages)}


def report_scale_figures(work: Path, per_category: int | None = None) -> dict:
    """The 500-query figures' counterparts at `per_category` * 5 queries (generated once per `work`)."""
    from orchestrator.report import replay

    per_category = per_category or SCALE_PER_CATEGORY
    run = _generated(Path(work) / f"report-scale-run-{per_category}", per_category)
    elapsed, peak = render_in_child(run)
    size = page_bytes(run)
    return {"report_10k_render_s": elapsed, "report_10k_peak_rss_bytes": peak, "report_10k_page_bytes": size["page"],
            "report_10k_query_page_bytes": size["query_page_max"], "report_10k_query_pages_total_bytes":
            size["query_pages"], "report_10k_queries": per_category * len(replay.CATEGORIES)}


def main(argv: list[str]) -> None:
    queries = int(argv[0]) if argv else SCALE_PER_CATEGORY * 5
    with tempfile.TemporaryDirectory(prefix="edgebench-report-scale-") as tmp:
        for name, value in report_scale_figures(Path(tmp), max(1, queries // 5)).items():
            print(f"{name:<36}{value:>16,}" if isinstance(value, int) else f"{name:<36}{value:>16.4g}")


if __name__ == "__main__":
    main(sys.argv[1:])
