"""The part jtop and tegrastats share: a source that runs for the whole run (the jtop service, a
tegrastats child) pushes readings at its own pace; the sampler keeps those that arrive while a
query is being watched, stamped on the runner's clock. Subclasses set `pace` (who sets the
interval) and call `_keep(reading, now)` from their reader."""

from __future__ import annotations

import threading

from .base import Sampler
from .derive import derive


class PushedSampler(Sampler):
    kind = "gpu"
    pace = "the source samples"  # how the interval-mismatch warning names who sets the pace

    def __init__(self, interval_s: float):
        if not interval_s > 0:
            raise ValueError(f"interval_s must be positive, got {interval_s!r}")
        self.interval_s = float(interval_s)
        self._lock = threading.Lock()
        self._t0_ns: int | None = None
        self._pid: int | None = None
        self._samples: list[dict] = []
        self.warnings: list[str] = []

    def set_interval(self, interval_s: float) -> None:
        """The interval is the run's, set once at open: a query asking another one is told so."""
        if abs(interval_s - self.interval_s) > 1e-9:
            msg = (f"{self.pace} every {self.interval_s:g} s for the whole run; a query's interval of "
                   f"{interval_s:g} s applies to the process sampler only")
            if msg not in self.warnings:
                self.warnings.append(msg)

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
