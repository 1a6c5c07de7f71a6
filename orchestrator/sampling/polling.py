"""The thread shape every polling sampler shares (the process sampler and the GPU ones): read on
absolute deadlines while a query runs.

Ticks fall on `t0 + k * interval` so the rate does not drift by the cost of a tick, and deadlines
missed while the thread was not scheduled are skipped and counted rather than sampled in a burst.
Each reading carries `dt_s`, the interval actually achieved (None for the first), so scheduling
jitter shows in the data. The object lives for the whole run (open/close once), so the CPU time,
the achieved interval and the warnings add up over all queries for the manifest.
"""

from __future__ import annotations

import threading
import time

from orchestrator import fields as F

from .base import Sampler
from .derive import derive


class PollingSampler(Sampler):
    kind = "gpu"

    def __init__(self, interval_s: float):
        if not interval_s > 0:
            raise ValueError(f"interval_s must be positive, got {interval_s!r}")
        self.interval_s = float(interval_s)
        self._interval_ns = max(1, round(self.interval_s * 1e9))
        self._quit = threading.Event()
        self._thread: threading.Thread | None = None
        self._samples: list[dict] = []
        self.warnings: list[str] = []
        self.cpu_time_s = 0.0
        self.missed_ticks = 0
        self.n_samples = 0
        self._dt_sum_ns = 0
        self._dt_n = 0
        self._lock = threading.Lock()

    # Subclasses: read one sample (without `t_s`) for the child `pid`; None ends this query's sampling.
    def _read(self, pid: int) -> dict | None:
        raise NotImplementedError

    def set_interval(self, interval_s: float) -> None:
        """Between queries only: an experiment may sample one query faster than the rest."""
        if not interval_s > 0:
            raise ValueError(f"interval_s must be positive, got {interval_s!r}")
        self.interval_s = float(interval_s)
        self._interval_ns = max(1, round(self.interval_s * 1e9))

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

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

    def achieved_interval_s(self) -> float | None:
        return round(self._dt_sum_ns / self._dt_n / 1e9, 6) if self._dt_n else None

    def info(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "interval_s": self.interval_s,
            "achieved_interval_s": self.achieved_interval_s(),
            "n_samples": self.n_samples,
            "missed_ticks": self.missed_ticks,
            "cpu_time_s": round(self.cpu_time_s, 6),
            "warnings": list(self.warnings),
            "selection": getattr(self, "selection", None),
        }

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
        while not quit_.is_set():
            now = time.perf_counter_ns()
            sample = self._read(pid)
            if sample is None:
                return
            sample = {F.T_S: (now - t0_ns) / 1e9, F.DT_S: None if prev_ns is None else (now - prev_ns) / 1e9,
                      **sample}
            samples.append(sample)
            self.n_samples += 1
            if prev_ns is None:
                # The first sample is late by the spawn time; the grid starts after it,
                # and that gap is not a missed tick.
                k = (now - t0_ns) // interval
            else:
                self._dt_sum_ns += now - prev_ns
                self._dt_n += 1
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
