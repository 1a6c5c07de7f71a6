"""The latency budget (`--slo ttft=2s,tbt=200ms`): parsed here for the measuring side (`edgebench
load`) and the report alike, so both read a budget the same way. Lean on purpose: the measuring
process imports it, so no polars and nothing of the report package (orchestrator/report/verdict.py
judges against it)."""

from __future__ import annotations

import re

from orchestrator.errors import UserError

# the budget's keys (in load.json's `slo` and summary.json's `slo`): seconds
TTFT_S = "ttft_s"  # the 90th percentile of TTFT
TBT_S = "tbt_s"  # the 90th percentile of the gaps between tokens

DEFAULT_SLO = {TTFT_S: 2.0, TBT_S: 0.2}
_UNITS = {"s": 1.0, "ms": 1e-3}
_TERM = re.compile(r"^\s*(ttft|tbt)\s*=\s*([0-9]*\.?[0-9]+)\s*(ms|s)\s*$")


def parse_slo(text: str | None) -> dict:
    """`ttft=2s,tbt=200ms` -> {"ttft_s": 2.0, "tbt_s": 0.2}; a term left out keeps its default."""
    slo = dict(DEFAULT_SLO)
    if not text:
        return slo
    for term in text.split(","):
        m = _TERM.match(term)
        if not m:
            raise UserError(f"--slo: cannot read {term.strip()!r}",
                            fix="--slo ttft=2s,tbt=200ms (a number with s or ms for ttft and/or tbt)")
        value = float(m.group(2)) * _UNITS[m.group(3)]
        if value <= 0:
            raise UserError(f"--slo: {m.group(1)} must be above zero", fix="--slo ttft=2s,tbt=200ms")
        slo[f"{m.group(1)}_s"] = value
    return slo


def slo_text(slo: dict) -> str:
    return f"TTFT p90 ≤ {dur(slo[TTFT_S])}, TBT p90 ≤ {dur(slo[TBT_S])}"


def dur(s: float | None) -> str:
    """Seconds as people read a latency: ms below a second."""
    if s is None:
        return "-"
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.2f} s"
