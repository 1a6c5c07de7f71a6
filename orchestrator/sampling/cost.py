"""What each GPU sampler costs, as % of one core, at 10 ms and 500 ms, measured on this machine
against recorded input: the checkout's fake tegrastats printing recorded lines, a fake sysfs tree
rewritten every 50 ms, and the fake jtop and pynvml modules (tests/fakes, tests/data).

What is counted: the CPU time of edgebench's own sampling code (the sampler thread, or the
observer that jtop's client thread calls), from `time.thread_time()` inside it. What is not: the
tegrastats program itself (here a Python fake, which would say nothing about NVIDIA's binary) and
the jtop client's socket decoding (the fake has none). On a board those two belong to the figure;
the manifest's `child_cpu_time_s` records tegrastats' share on every real run.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from orchestrator.errors import UserError

from . import registry

INTERVALS = {"10ms": 0.01, "500ms": 0.5}
# NVML is left out: against the fake module it would time the fake's /proc scan, not the driver.
# Its real cost is measured where a GPU is (see the NVML device check), never on recorded input.
SAMPLERS = ("tegrastats", "sysfs", "jtop")


def fakes_dir() -> Path:
    here = Path(__file__).resolve().parents[2] / "tests"
    if not (here / "fakes").is_dir():
        raise UserError("the recorded sampler input lives in the checkout's tests/ folder, which is not here",
                        fix="run `make bench` from a git checkout of edgebench")
    return here


@contextlib.contextmanager
def environ(**values: str):
    """These environment variables set while the block runs, then put back as they were."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _recorded_board(tests: Path):
    """Environment and import path under which every sampler reads recorded input."""
    sys.path.insert(0, str(tests))
    sys.path.insert(0, str(tests / "fakes" / "modules"))
    for name in ("jtop", "pynvml"):
        sys.modules.pop(name, None)
    from fakes.sysfs_tree import NANO_FRAMES, NanoSysfs, TraceWriter

    with tempfile.TemporaryDirectory(prefix="edgebench-cost-") as tmp:
        board = NanoSysfs(Path(tmp))
        writer = TraceWriter(board, NANO_FRAMES, period_s=0.05)
        try:
            with environ(EDGEBENCH_SYSROOT=tmp, EDGEBENCH_TEGRASTATS=str(tests / "fakes/bin/tegrastats"),
                          FAKE_TEGRASTATS_LINES=str(tests / "data/tegrastats/nano_root.txt"),
                          FAKE_JTOP_SERVICE="active", FAKE_JTOP_GPU_COMMS="sleep", FAKE_NVML_GPU_COMMS="sleep"):
                yield
        finally:
            writer.close()
            for name in ("jtop", "pynvml"):
                sys.modules.pop(name, None)
            sys.path.remove(str(tests / "fakes" / "modules"))
            sys.path.remove(str(tests))


def measure(name: str, interval_s: float, seconds: float) -> float:
    """% of one core that `name` spent sampling one `seconds`-long child at `interval_s`."""
    sampler = registry.sampler_class(name)(interval_s)
    sampler.open()
    try:
        child = subprocess.Popen(["sleep", str(seconds)])
        t0 = time.perf_counter_ns()
        sampler.start(child.pid, t0)
        child.wait()
        sampler.stop()
        wall = (time.perf_counter_ns() - t0) / 1e9
    finally:
        sampler.close()
    return round(100.0 * sampler.cpu_time_s / wall, 3)


def sampler_cpu_figures(seconds_10ms: float = 2.0, seconds_500ms: float = 5.0,
                        samplers: tuple[str, ...] = SAMPLERS) -> dict:
    """{'sampler_cpu_pct_<name>_<10ms|500ms>': % of one core} for every sampler, on recorded input."""
    tests = fakes_dir()
    out = {}
    with _recorded_board(tests):
        for name in samplers:
            for label, interval in INTERVALS.items():
                seconds = seconds_10ms if label == "10ms" else seconds_500ms
                out[f"sampler_cpu_pct_{name}_{label}"] = measure(name, interval, seconds)
    return out
