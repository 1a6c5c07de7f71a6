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

import psutil

from orchestrator import fields as F

from .polling import PollingSampler

_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied)


class ProcessSampler(PollingSampler):
    """Samples the child every `interval_s` on the polling thread every sampler shares
    (sampling/polling.py: absolute deadlines, missed ticks skipped and counted), until `stop()`
    or the process ends.

    A tick costs about 0.5 ms of CPU on a 2-core x86 VM (waking on a cold cache costs more
    than the /proc reads themselves): about 5% of one core at 10 ms, 0.1% at 500 ms. Part of
    it runs with the GIL held, which can delay the runner's own timestamps by some tens of
    microseconds when the two coincide. `cpu_time_s` in `info()` is the thread's whole CPU
    time, measured from inside it, so every run records what its sampling cost.
    """

    name = "process"
    kind = "process"

    def __init__(self, interval_s: float, cores: int | None = None):
        super().__init__(interval_s)
        # `cores`: the machine the readings describe, when that is not this one (a replayed board)
        self._ncpu = cores or psutil.cpu_count(logical=True) or 1
        self._proc: psutil.Process | None = None
        self._tick_ns = self._cpu_tick_ns = 0  # _tick_ns: set by the polling loop before each _read
        self._cpu_s = 0.0

    def start(self, pid: int, t0_ns: int) -> None:
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("this ProcessSampler is still watching a process; stop() it first")
        self._proc = None
        super().start(pid, t0_ns)

    def _read(self, pid: int) -> dict | None:
        # The CPU share is taken over exactly this reading's dt_s (the loop's stamps), not over psutil's
        # window between two /proc reads: a read delayed on a loaded machine made that window a sliver
        # of dt_s, a 10 ms kernel CPU tick divided by it read as thousands of percent, and the readings
        # no longer added up to the CPU the child used.
        tick_ns = self._tick_ns
        first = self._proc is None
        try:
            if first:
                self._proc = psutil.Process(pid)
            proc = self._proc
            with proc.oneshot():
                # A zombie still answers with zeros; it has finished, so stop there.
                if proc.status() == psutil.STATUS_ZOMBIE:
                    return None
                rss = proc.memory_info().rss
                times = proc.cpu_times()
                threads = proc.num_threads()
        except _GONE:
            return None  # the process ended between two ticks: that is how sampling normally ends
        cpu_s = times.user + times.system
        sys_cpu = psutil.cpu_percent(None)
        if first:
            # The first reading only sets the baselines; over the microseconds since start()
            # a share would be tick quantisation noise, not a measurement.
            cpu = sys_cpu = 0.0
        else:
            cpu = round((cpu_s - self._cpu_s) / max(tick_ns - self._cpu_tick_ns, 1) * 1e9 * 100, 1)
        self._cpu_s, self._cpu_tick_ns = cpu_s, tick_ns
        vm = psutil.virtual_memory()
        return {
            F.RSS_BYTES: rss,
            F.CPU_PCT: cpu,
            F.CPU_PCT_NORM: round(cpu / self._ncpu, 2),
            F.NUM_THREADS: threads,
            F.SYS_CPU_PCT: sys_cpu,
            F.SYS_MEM_USED_BYTES: vm.used,
            F.SYS_MEM_AVAILABLE_BYTES: vm.available,
        }

    def aggregate(self, samples: list[dict], timeline: dict) -> dict:
        """The kernel's high-water mark catches peaks between samples; its per-CPU counters can
        lag a sample by a few pages, so the larger of the two is the peak."""
        kernel = timeline.get("kernel_peak_rss_bytes") or 0
        sampled = max((x.get(F.RSS_BYTES) or 0 for x in samples), default=0)
        cpu = [x[F.CPU_PCT] for x in samples if x.get(F.DT_S) is not None]
        # The readings leave a query shorter than one interval with no CPU share at all; the
        # kernel's count over the child's life has one however short the query.
        cpu_s, life_s = timeline.get(F.MAIN_CPU_S), timeline.get("t_exit_s")
        life = cpu_s / life_s * 100 if cpu_s is not None and life_s else None
        # Without that fallback a sweep of short queries (a fast host, a small model) had no CPU mean at
        # all, and the report called the process's CPU "not recorded".
        mean = sum(cpu) / len(cpu) if cpu else life
        return {F.PEAK_RSS_BYTES: max(kernel, sampled) or None, F.PEAK_RSS_SAMPLED_BYTES: sampled or None,
                F.CPU_MEAN_PCT: mean,
                F.CPU_LIFE_PCT_NORM: round(life / self._ncpu, 2) if life is not None else None}

