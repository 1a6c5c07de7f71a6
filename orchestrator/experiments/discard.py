"""Readings an experiment discards: marked `discard: true` when stored, never deleted, and left
out of the figures a sampler aggregates into the record (and of stats.kept_samples)."""

from __future__ import annotations

from orchestrator import fields as F


class Discarding:
    """Wraps a sampler so that the first `n` readings of each measured item are marked
    `discard: true` when they are stored (the study dropped them: the process is still
    settling) and left out of the figures the sampler aggregates into the record. Warm-ups
    are marked by their phase instead. The session's before_item hook sets the phase."""

    def __init__(self, inner, n: int):
        self.inner, self.n, self.phase = inner, n, "measure"

    def __getattr__(self, attr):  # name, kind, set_interval, ...
        return getattr(self.inner, attr)

    def open(self):
        self.inner.open()

    def close(self):
        self.inner.close()

    def start(self, pid, t0_ns):
        self.inner.start(pid, t0_ns)

    def stop(self) -> list[dict]:
        samples = self.inner.stop()
        if self.phase != "measure":
            return samples
        first = set(sorted(range(len(samples)), key=lambda i: samples[i].get(F.T_S, 0))[: self.n])
        return [dict(s, discard=True) if i in first else s for i, s in enumerate(samples)]

    def aggregate(self, samples, timeline):
        return self.inner.aggregate([s for s in samples if not s.get(F.DISCARD)], timeline)

    def info(self):
        return dict(self.inner.info(), discard_first=self.n)


def discarding(samplers: list, n: int) -> list:
    return [Discarding(s, n) for s in samplers] if n else samplers
