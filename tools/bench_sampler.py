"""What the process sampler costs, at several intervals, on this machine.

    .venv/bin/python tools/bench_sampler.py [seconds]

For each interval it samples a child that keeps one core busy, and reports the sampler
thread's own CPU time (what info()["cpu_time_s"] records in every run) and the whole
harness process's CPU time over the same span (thread start, psutil, join: everything but
the child), both as a share of one core, with the achieved intervals."""

from __future__ import annotations

import resource
import subprocess
import sys
import time

from orchestrator.sampling import ProcessSampler, summarise_intervals

BUSY = "import time\nend = time.perf_counter() + {s}\nwhile time.perf_counter() < end: pass\n"


def self_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def bench(interval_s: float, seconds: float) -> dict:
    sampler = ProcessSampler(interval_s)
    t0 = time.perf_counter_ns()
    child = subprocess.Popen([sys.executable, "-c", BUSY.format(s=seconds)])
    spawned = self_cpu_s()
    sampler.start(child.pid, t0)
    child.wait()
    samples = sampler.stop()
    wall = (time.perf_counter_ns() - t0) / 1e9
    info = sampler.info()
    iv = summarise_intervals(samples)
    return {
        "interval_s": interval_s,
        "samples": len(samples),
        "missed": info["missed_ticks"],
        "thread_core_pct": 100 * info["cpu_time_s"] / wall,
        "process_core_pct": 100 * (self_cpu_s() - spawned) / wall,
        "us_per_tick": 1e6 * info["cpu_time_s"] / max(1, len(samples)),
        "mean_dt_ms": 1e3 * iv["mean_dt_s"] if iv["n"] else float("nan"),
        "max_dt_ms": 1e3 * iv["max_dt_s"] if iv["n"] else float("nan"),
    }


COLUMNS = [  # (key, header, format)
    ("interval_s", "interval_s", "g"), ("samples", "samples", "d"), ("missed", "missed", "d"),
    ("thread_core_pct", "thread %core", ".2f"), ("process_core_pct", "process %core", ".2f"),
    ("us_per_tick", "us/tick", ".0f"), ("mean_dt_ms", "mean dt ms", ".2f"), ("max_dt_ms", "max dt ms", ".2f"),
]


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    rows = [bench(iv, seconds) for iv in (0.01, 0.05, 0.1, 0.5)]
    print("  ".join(f"{h:>13}" for _, h, _ in COLUMNS))
    for r in rows:
        print("  ".join(f"{r[k]:>13{f}}" for k, _, f in COLUMNS))


if __name__ == "__main__":
    main()
