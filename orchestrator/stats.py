"""Percentiles and summaries in plain Python, for the terminal and the run summary (the
measuring process does not import polars)."""

from __future__ import annotations

import math
import statistics


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default), q in [0, 100]."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def describe(values: list[float]) -> dict:
    vals = [v for v in values if v is not None]
    if not vals:
        return dict.fromkeys(("mean", "std", "min", "max", "p50", "p90", "p99"), None) | {"n": 0}
    return {
        "n": len(vals), "mean": statistics.fmean(vals), "std": statistics.pstdev(vals) if len(vals) > 1 else 0.0,
        "min": min(vals), "max": max(vals),
        "p50": percentile(vals, 50), "p90": percentile(vals, 90), "p99": percentile(vals, 99),
    }


def measured(records: list[dict]) -> list[dict]:
    """Warm-ups are recorded to be seen, never counted."""
    return [r for r in records if r.get("phase", "measure") == "measure"]


def repetition_spread(records: list[dict], key: str = "total_s") -> dict:
    """How much repetitions of the same (query, variant) disagree: per group of two or more ok
    measured repetitions, the coefficient of variation of `key`; described over the groups."""
    groups: dict = {}
    for r in measured(records):
        if r["status"] == "ok" and r.get(key) is not None:
            groups.setdefault((r["query_id"], r.get("variant_id", "")), []).append(r[key])
    cvs = [statistics.pstdev(v) / statistics.fmean(v) for v in groups.values() if len(v) > 1 and statistics.fmean(v)]
    return describe(cvs)


def by_category(records: list[dict], categories: tuple[str, ...]) -> list[dict]:
    """One row per category: TTFT and TBT percentiles (TBT pooled over every token gap of the
    category), decode tokens/s, peak RSS, failures, and the spread of repetitions. Warm-ups
    are left out."""
    rows = []
    records = measured(records)
    for cat in categories:
        recs = [r for r in records if r["category"] == cat]
        if not recs:
            continue
        ok = [r for r in recs if r["status"] == "ok"]
        rows.append({
            "category": cat,
            "n": len(recs),
            "failures": len(recs) - len(ok),
            "invalid": sum(1 for r in ok if not r.get("validation", {}).get("ok", False)),
            "ttft": describe([r.get("ttft_s") for r in ok]),
            "tbt": describe([x for r in ok for x in r.get("tbt_s", [])]),
            "decode_tok_s": describe([r.get("decode_tok_s") for r in ok]),
            "peak_rss_bytes": max((r.get("peak_rss_bytes") or 0 for r in recs), default=0) or None,
            "repetitions": max((r.get("repetition", 0) + 1 for r in recs), default=0),
            "total_cv": repetition_spread(recs)["p50"],
        })
    return rows
