"""The one interface every sampler offers the runner."""

from __future__ import annotations


class Sampler:
    """Watches one child process from `start` until `stop`.

    A base class rather than a Protocol so that fakes in tests (and the null sampler) only
    override what they need. The defaults record nothing.
    """

    name: str = "null"

    def start(self, pid: int, t0_ns: int) -> None:
        """Begin watching `pid`. `t0_ns` is `time.perf_counter_ns()` taken just before the
        spawn, so that sample times share the runner's clock and origin."""

    def stop(self) -> list[dict]:
        """Stop, wait for the sampler to finish, and return its samples. Safe to call twice."""
        return []

    def info(self) -> dict:
        """What this sampler is and how it was set, for the run manifest."""
        return {"name": self.name}


class NullSampler(Sampler):
    """Records nothing: for runs that want timings without any sampling thread in the way."""
