"""The board's idle power, measured in the run itself: before the first query the session lets the
GPU/board sampler watch for `idle_window_s` seconds while nothing of edgebench's runs, and keeps the
mean of its `power_total_mw` readings. Each query's energy net of idle (sampling/derive.py) subtracts
that power over the query's time.

Measured in the same run rather than taken from a datasheet or another day: a board's idle draw
moves with its power mode, clocks, fan, temperature and attached peripherals, all of which the run
records at the same moment. The window watches this process (`os.getpid()`), so per-process fields
read nothing of `main`; only the board's power is kept.

    manifest["idle_power"] = {"sampler", "window_s", "n", "power_mw", "std_mw"}   ("why" when n is 0)
"""

from __future__ import annotations

import os
import time

from orchestrator import fields as F
from orchestrator import stats


def power_sampler(samplers: list):
    """The first GPU/board sampler that may read power: `none` (no telemetry) reads nothing."""
    for s in samplers:
        if getattr(s, "kind", None) == "gpu" and getattr(s, "name", None) != "none":
            return s
    return None


def measure(samplers: list, window_s: float, wait=time.sleep) -> dict | None:
    """Watch the board for `window_s` seconds; None when there is no power sampler or the window is 0."""
    sampler = power_sampler(samplers)
    if sampler is None or not window_s or window_s <= 0:
        return None
    sampler.start(os.getpid(), time.perf_counter_ns())
    try:
        wait(window_s)
    finally:
        readings = sampler.stop()
    d = stats.describe([r.get(F.POWER_TOTAL_MW) for r in readings if r.get(F.T_S, 0) >= 0])
    out = {"sampler": sampler.name, "window_s": window_s, "n": d["n"],
           "power_mw": None if d["mean"] is None else round(d["mean"], 3),
           "std_mw": None if d["std"] is None else round(d["std"], 3)}
    if not d["n"]:
        out["why"] = f"the {sampler.name} sampler read no {F.POWER_TOTAL_MW} in {window_s:g} s"
    return out
