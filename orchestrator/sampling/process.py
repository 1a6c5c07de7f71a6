"""psutil sampler: memory, CPU and thread count of the inference process, plus the whole
machine's CPU and memory, on a fixed grid of absolute deadlines.

Reading the values (all from /proc on Linux):

- The first sample's `cpu_pct` and `sys_cpu_pct` are 0.0: psutil needs two readings to
  compute a percentage, and the first sample is the first reading. Its `dt_s` is None.
- `cpu_pct` is summed over cores (a process busy on 4 cores reads 400); `cpu_pct_norm`
  divides by the logical core count so that 100 means the whole machine.
- The kernel counts CPU time in clock ticks (1/100 s on most Linux builds), so at short
  intervals `cpu_pct` is quantised: at 10 ms a single busy core reads 0, 100 or 200 from one
  tick to the next, and only averages over several ticks are meaningful.
- `dt_s` is the interval actually achieved, so scheduling jitter shows in the data instead
  of being hidden by the nominal rate.
"""

from __future__ import annotations

import threading
import time

import psutil

from .base import Sampler

_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied)


class ProcessSampler(Sampler):
    """A daemon thread (pyperf's PeakMemoryUsageThread shape: `while not quit: sample();
    wait()`) that samples one process every `interval_s` until `stop()` or the process ends.

    Ticks fall on absolute deadlines `t0 + k * interval` so that the rate does not drift by
    the cost of each tick. When the thread falls behind by more than one interval (the board
    is overloaded, the thread was not scheduled), it skips the deadlines it missed rather
    than sampling in a burst to catch up, and counts them in `missed_ticks`.

    A tick costs about 0.5 ms of CPU on a 2-core x86 VM (waking on a cold cache costs more
    than the /proc reads themselves): about 5% of one core at 10 ms, 0.1% at 500 ms. Part of
    it runs with the GIL held, which can delay the runner's own timestamps by some tens of
    microseconds when the two coincide. `cpu_time_s` in `info()` is the thread's whole CPU
    time, measured from inside it, so every run records what its sampling cost.
    """

    name = "process"

    def __init__(self, interval_s: float = 0.5):
        self._ncpu = psutil.cpu_count(logical=True) or 1
        self._thread: threading.Thread | None = None
        self._samples: list[dict] = []
        self.set_interval(interval_s)
        # run totals for the manifest; the per-attempt figures go into each query record
        self.missed_ticks = 0
        self.cpu_time_s = 0.0
        self.n_samples = 0
        self._dt_sum = 0.0
        self._dt_n = 0

    def set_interval(self, interval_s: float) -> None:
        """Between queries only: an experiment may sample one query faster than the rest."""
        if not interval_s > 0:
            raise ValueError(f"interval_s must be positive, got {interval_s!r}")
        self.interval_s = float(interval_s)
        self._interval_ns = max(1, round(self.interval_s * 1e9))

    def start(self, pid: int, t0_ns: int) -> None:
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("this ProcessSampler is still watching a process; stop() it first")
        self._samples = []
        self._quit = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(pid, t0_ns), name=f"edgebench-sampler-{pid}", daemon=True
        )
        self._thread.start()

    def stop(self) -> list[dict]:
        if self._thread is not None:
            self._quit.set()
            # A tick is well under a millisecond; the timeout only guards against a /proc
            # read that hangs, in which case the daemon thread is abandoned.
            self._thread.join(timeout=5.0)
            self._thread = None
            self.n_samples += len(self._samples)
            dts = [x["dt_s"] for x in self._samples if x.get("dt_s") is not None]
            self._dt_sum += sum(dts)
            self._dt_n += len(dts)
        return list(self._samples)

    def aggregate(self, samples: list[dict], timeline: dict) -> dict:
        """The kernel's high-water mark catches peaks between samples; its per-CPU counters can
        lag a sample by a few pages, so the larger of the two is the peak."""
        kernel = timeline.get("kernel_peak_rss_bytes") or 0
        sampled = max((x.get("rss_bytes") or 0 for x in samples), default=0)
        cpu = [x["cpu_pct"] for x in samples if x.get("dt_s") is not None]
        return {"peak_rss_bytes": max(kernel, sampled) or None, "peak_rss_sampled_bytes": sampled or None,
                "cpu_mean_pct": sum(cpu) / len(cpu) if cpu else None}

    def info(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "interval_s": self.interval_s,
            "achieved_interval_s": self._dt_sum / self._dt_n if self._dt_n else None,
            "missed_ticks": self.missed_ticks,
            "n_samples": self.n_samples,
            "cpu_time_s": round(self.cpu_time_s, 6),
        }

    def _run(self, pid: int, t0_ns: int) -> None:
        cpu0 = time.thread_time()
        try:
            self._loop(pid, t0_ns)
        except _GONE:
            pass  # the process ended between two ticks: that is how sampling normally ends
        finally:
            self.cpu_time_s += time.thread_time() - cpu0

    def _loop(self, pid: int, t0_ns: int) -> None:
        proc = psutil.Process(pid)
        interval = self._interval_ns
        prev_ns: int | None = None
        k = 0
        while not self._quit.is_set():
            now = time.perf_counter_ns()
            sample = self._sample(proc, now, t0_ns, prev_ns)
            if sample is None:
                return
            self._samples.append(sample)
            if prev_ns is None:
                # The first sample is late by the spawn time; the grid starts after it,
                # and that gap is not a missed tick.
                k = (now - t0_ns) // interval
            prev_ns = now
            k += 1
            now = time.perf_counter_ns()
            behind = now - (t0_ns + k * interval)
            if behind > interval:
                skipped = behind // interval
                k += skipped
                self.missed_ticks += skipped
            delay = t0_ns + k * interval - now
            if delay > 0:
                self._quit.wait(delay / 1e9)

    def _sample(self, proc: psutil.Process, now: int, t0_ns: int, prev_ns: int | None) -> dict | None:
        with proc.oneshot():
            # A zombie still answers with zeros; it has finished, so stop there.
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            rss = proc.memory_info().rss
            cpu = proc.cpu_percent(None)
            threads = proc.num_threads()
        sys_cpu = psutil.cpu_percent(None)
        if prev_ns is None:
            # Those two calls only set psutil's baseline; over the microseconds since
            # start() their value is tick quantisation noise, not a measurement.
            cpu = sys_cpu = 0.0
        vm = psutil.virtual_memory()
        return {
            "t_s": (now - t0_ns) / 1e9,
            "dt_s": None if prev_ns is None else (now - prev_ns) / 1e9,
            "rss_bytes": rss,
            "cpu_pct": cpu,
            "cpu_pct_norm": round(cpu / self._ncpu, 2),
            "num_threads": threads,
            "sys_cpu_pct": sys_cpu,
            "sys_mem_used_bytes": vm.used,
            "sys_mem_available_bytes": vm.available,
        }


def summarise_intervals(samples: list[dict]) -> dict:
    """How regular the achieved intervals were: count, mean, min and max of `dt_s`."""
    dts = [s["dt_s"] for s in samples if s.get("dt_s") is not None]
    if not dts:
        return {"n": 0, "mean_dt_s": None, "min_dt_s": None, "max_dt_s": None}
    return {"n": len(dts), "mean_dt_s": sum(dts) / len(dts), "min_dt_s": min(dts), "max_dt_s": max(dts)}
