"""What each GPU sampler costs, as % of one core, at 10 ms and 500 ms, measured on this machine
against the recorded Nano (recorded.py: the stand-in tegrastats printing recorded lines, a sysfs
tree rewritten every 50 ms, the stand-in jtop client), shipped with the package.

What is counted: the CPU time of edgebench's own sampling code (the sampler thread, or the
observer that jtop's client thread calls), from `time.thread_time()` inside it. What is not: the
tegrastats program itself (here a Python stand-in, which would say nothing about NVIDIA's binary)
and the jtop client's socket decoding (the stand-in has none). On a board those two belong to the
figure; the manifest's `child_cpu_time_s` records tegrastats' share on every real run.
"""

from __future__ import annotations

import subprocess
import time

from . import recorded, registry

INTERVALS = {"10ms": 0.01, "500ms": 0.5}


def cpu_pct(sampler, seconds: float) -> float:
    """% of one core that `sampler` (not yet opened) spent watching one `seconds`-long child."""
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
                        samplers: tuple[str, ...] = registry.RECORDED) -> dict:
    """{'sampler_cpu_pct_<name>_<10ms|500ms>': % of one core} for every sampler, on recorded input."""
    out = {}
    with recorded.nano():
        for name in samplers:
            for label, interval in INTERVALS.items():
                seconds = seconds_10ms if label == "10ms" else seconds_500ms
                out[f"sampler_cpu_pct_{name}_{label}"] = cpu_pct(registry.sampler_class(name)(interval), seconds)
    return out
