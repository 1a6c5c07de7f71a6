"""Arrival profiles: when each request of a load point is due.

Open-loop profiles (constant rate, Poisson) give every request an absolute deadline, seconds after
the point's start on the one monotonic clock (perf_counter_ns): a late send never pushes the later
ones back, so the schedule stays the offered load and the lag shows how far the client drifted.
Closed-loop profiles (synchronous, concurrency N) have no deadlines: a request goes when one of N
workers is free."""

from __future__ import annotations

import random
from dataclasses import dataclass

from orchestrator.load import format as fmt

SYNC, CONCURRENCY, CONSTANT, POISSON = "sync", "concurrency", "constant", "poisson"
RATE_KINDS = (CONSTANT, POISSON)
KINDS = (SYNC, CONCURRENCY, CONSTANT, POISSON)


@dataclass(frozen=True)
class Point:
    """One load point: how requests arrive, and how many."""

    kind: str
    n: int
    rate: float | None = None  # requests per second (open loop)
    concurrency: int = 1  # workers (closed loop); sync is 1
    seed: int = 0  # Poisson's gaps

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown arrival profile {self.kind!r}")
        if self.kind in RATE_KINDS and not (self.rate and self.rate > 0):
            raise ValueError(f"a {self.kind} profile needs a rate above zero, got {self.rate!r}")
        if self.n < 1 or self.concurrency < 1:
            raise ValueError("a load point needs at least one request and one worker")

    @property
    def open_loop(self) -> bool:
        return self.kind in RATE_KINDS

    @property
    def label(self) -> str:
        if self.kind == SYNC:
            return "synchronous"
        if self.kind == CONCURRENCY:
            return f"concurrency {self.concurrency}"
        return f"{self.kind} {self.rate:g}/s"

    def to_json(self) -> dict:
        return {fmt.POINT_KIND: self.kind, fmt.N: self.n, fmt.RATE: self.rate, fmt.CONCURRENCY: self.concurrency,
                fmt.SEED: self.seed}

    @classmethod
    def from_json(cls, d: dict) -> Point:
        return cls(d[fmt.POINT_KIND], d[fmt.N], d.get(fmt.RATE), d.get(fmt.CONCURRENCY, 1), d.get(fmt.SEED, 0))


def deadlines(point: Point) -> list[float] | None:
    """Each request's due time, seconds after the point's start (the first at 0); None for closed loop.
    Poisson: exponential gaps of mean 1/rate from a generator of the point's own seed, so the same
    seed gives the same schedule on every run."""
    if not point.open_loop:
        return None
    if point.kind == CONSTANT:
        return [i / point.rate for i in range(point.n)]
    rng = random.Random(point.seed)
    out, t = [0.0], 0.0
    for _ in range(point.n - 1):
        t += rng.expovariate(point.rate)
        out.append(t)
    return out


def rate_points(rates: list[float], n: int, kind: str, seed: int) -> list[Point]:
    """One open-loop point per rate, lowest first; each Poisson point draws from seed + its index."""
    return [Point(kind, n, rate=r, seed=seed + i) for i, r in enumerate(sorted(set(rates)))]


# --sweep: after a synchronous point, rates at these fractions of the capacity it suggests
SWEEP_FRACTIONS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5)


def sweep_rates(sync_e2e_s: list[float], slots: int) -> list[float]:
    """Rates around the capacity the synchronous point suggests: `slots` requests served at once, each
    in the mean end-to-end time it took alone (an upper bound: slots share the board's cores)."""
    if not sync_e2e_s:
        raise ValueError("the synchronous point finished no request: no capacity to sweep around")
    capacity = slots / (sum(sync_e2e_s) / len(sync_e2e_s))
    return [float(f"{capacity * f:.3g}") for f in SWEEP_FRACTIONS]


def parse_rates(text: str) -> list[float]:
    """`0.25,0.5,1` -> [0.25, 0.5, 1.0]; ValueError naming the bad term."""
    out = []
    for term in text.split(","):
        try:
            r = float(term)
        except ValueError:
            raise ValueError(f"cannot read {term.strip()!r} as requests per second") from None
        if not r > 0 or r != r or r == float("inf"):
            raise ValueError(f"a rate must be a finite number above zero, got {term.strip()!r}")
        out.append(r)
    return out
