"""The thread shape every polling sampler shares (the process sampler and the GPU ones): read on
absolute deadlines while a query runs.

Ticks fall on `t0 + k * interval` so the rate does not drift by the cost of a tick, and deadlines
missed while the thread was not scheduled are skipped and counted rather than sampled in a burst.
Each reading carries `dt_s`, the interval actually achieved (None for the first), so scheduling
jitter shows in the data. The object lives for the whole run (open/close once), so the CPU time,
the achieved interval and the warnings add up over all queries for the manifest (base.RunSampler).
"""

from __future__ import annotations

import threading
import time

from orchestrator import fields as F

from .base import RunSampler, check_interval
from .derive import derive


class PollingSampler(RunSampler):
    def __init__(self, interval_s: float):
        super().__init__(interval_s)
        self._interval_ns = max(1, round(self.interval_s * 1e9))
        self._quit = threading.Event()
        self._thread: threading.Thread | None = None
        self._samples: list[dict] = []
        self.missed_ticks = 0
        self._lock = threading.Lock()

    # Subclasses: read one sample (without `t_s`) for the child `pid`; None ends this query's sampling.
    def _read(self, pid: int) -> dict | None:
        raise NotImplementedError

    def set_interval(self, interval_s: float) -> None:
        """Between queries only: an experiment may sample one query faster than the rest."""
        self.interval_s = check_interval(interval_s)
        self._interval_ns = max(1, round(self.interval_s * 1e9))

    def start(self, pid: int, t0_ns: int) -> None:
        self.stop()
        self._quit = threading.Event()
        self._samples = []
        self._thread = threading.Thread(target=self._run, args=(pid, t0_ns, self._quit, self._samples),
                                         name=f"edgebench-{self.name}-{pid}", daemon=True)
        self._thread.start()

    def stop(self) -> list[dict]:
        self._quit.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        return list(self._samples)

    def close(self) -> None:
        self.stop()

    def aggregate(self, samples: list[dict], timeline: dict) -> dict:
        return derive(samples, timeline)

    def info(self) -> dict:
        return {**super().info(), "missed_ticks": self.missed_ticks}

    def _run(self, pid: int, t0_ns: int, quit_: threading.Event, samples: list[dict]) -> None:
        cpu0 = time.thread_time()
        try:
            self._loop(pid, t0_ns, quit_, samples)
        except Exception as exc:  # noqa: BLE001 - a sampler must never take the run down with it
            self.warn(f"{self.name} sampling stopped: {type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self.cpu_time_s += time.thread_time() - cpu0

    def _loop(self, pid: int, t0_ns: int, quit_: threading.Event, samples: list[dict]) -> None:
        interval = self._interval_ns
        prev_ns: int | None = None
        k = 0
        self.arrivals.restart()
        while not quit_.is_set():
            now = time.perf_counter_ns()
            self._tick_ns = now  # this reading's stamp: a _read that divides by dt_s uses exactly this one
            sample = self._read(pid)
            if sample is None:
                return
            sample = {F.T_S: (now - t0_ns) / 1e9, F.DT_S: None if prev_ns is None else (now - prev_ns) / 1e9,
                      **sample}
            samples.append(sample)
            self.n_samples += 1
            self.arrivals.note(now)
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
                quit_.wait(delay / 1e9)
