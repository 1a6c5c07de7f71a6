"""The report's speed figure for `make bench`: render a run of 500 queries (100 per category, 0.5 s
samples, one 10 ms series per category) written by the real session on a replayed Nano
(report/replay.py), in a child process, and measure its wall time and peak RSS (from wait4, the
kernel's high-water mark of the child)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PER_CATEGORY = 100
INTERVAL_S = 0.5
GRANULAR_S = 0.01
_CHILD = "import sys; from orchestrator.report.render import render; render(sys.argv[1])"


def report_bench_figures(work: Path) -> dict:
    from orchestrator.report import replay

    run = Path(work) / "report-bench-run"
    if not (run / "manifest.json").is_file():
        replay.make_run(run, per_category=PER_CATEGORY, interval_s=INTERVAL_S, granular_s=GRANULAR_S, seed=11)
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
    return {"report_render_s": elapsed, "report_peak_rss_bytes": usage.ru_maxrss * 1024,
            "report_queries": PER_CATEGORY * len(replay.CATEGORIES)}
