"""The part jtop and tegrastats share: a source that runs for the whole run (the jtop service, a
tegrastats child) pushes readings at its own pace; the sampler keeps those that arrive while a
query is being watched, stamped on the runner's clock. Subclasses set `pace` (who sets the
interval) and call `_arrived(now, read)` from their reader for every reading."""

from __future__ import annotations

import threading
from collections.abc import Callable

from orchestrator import fields as F

from .base import RunSampler
from .derive import derive


class PushedSampler(RunSampler):
    pace = "the source samples"  # how the interval-mismatch warning names who sets the pace

    def __init__(self, interval_s: float):
        super().__init__(interval_s)
        self._lock = threading.Lock()
        self._t0_ns: int | None = None
        self._pid: int | None = None
        self._samples: list[dict] = []

    def set_interval(self, interval_s: float) -> None:
        """The interval is the run's, set once at open: a query asking another one is told so."""
        if abs(interval_s - self.interval_s) > 1e-9:
            self.warn(f"{self.pace} every {self.interval_s:g} s for the whole run; a query's interval of "
                      f"{interval_s:g} s applies to the process sampler only")

    def _arrived(self, now: int, read: Callable[[], dict]) -> None:
        """A reading arrived at `now` (perf_counter_ns): every one counts for the achieved interval,
        but only while a query is watched does `read()` turn it into a sample, so readings between
        queries cost nothing but the count. What `read` raises reaches the caller, nothing kept."""
        self.arrivals.note(now)
        with self._lock:
            if self._t0_ns is None:
                return
            sample = read()
            self._samples.append({F.T_S: (now - self._t0_ns) / 1e9, **sample})
            self.n_samples += 1

    def start(self, pid: int, t0_ns: int) -> None:
        with self._lock:
            self._samples = []
            self._pid = pid
            self._t0_ns = t0_ns

    def stop(self) -> list[dict]:
        with self._lock:
            self._t0_ns = None
            return list(self._samples)

    def aggregate(self, samples: list[dict], timeline: dict) -> dict:
        return derive(samples, timeline)
