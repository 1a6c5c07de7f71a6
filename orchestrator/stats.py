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


# Two-sided 95% Student t quantiles (t_{0.975, df}) for df 1..30; beyond, a Cornish-Fisher
# expansion around the normal quantile, within 1e-4 of the exact value. A table rather than
# scipy: the measuring process prints these and must stay light.
_T975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
         2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
         2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423)
_Z975 = 1.959964


def t975(df: int) -> float:
    if df < 1:
        raise ValueError(f"a t quantile needs df >= 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    return (z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3))


def ci95(values: list[float]) -> dict:
    """Mean with its 95% confidence interval (t-distribution, sample standard deviation).
    One value has no interval: its bounds are None."""
    vals = [v for v in values if v is not None]
    if not vals:
        return {"n": 0, "mean": None, "half_width": None, "low": None, "high": None}
    mean = statistics.fmean(vals)
    if len(vals) < 2:
        return {"n": 1, "mean": mean, "half_width": None, "low": None, "high": None}
    half = t975(len(vals) - 1) * statistics.stdev(vals) / math.sqrt(len(vals))
    return {"n": len(vals), "mean": mean, "half_width": half, "low": mean - half, "high": mean + half}


def ci_by_item(records: list[dict], keys: tuple[str, ...] = ("ttft_s", "tpot_s", "total_s")) -> list[dict]:
    """Per (query, variant), over its ok measured repetitions: a 95% interval for each key."""
    groups: dict = {}
    for r in measured(records):
        if r["status"] == "ok":
            groups.setdefault((r["query_id"], r.get("variant_id", "")), []).append(r)
    return [{"query_id": qid, "variant_id": vid, "category": recs[0]["category"], "n": len(recs),
             **{k: ci95([r.get(k) for r in recs]) for k in keys}}
            for (qid, vid), recs in groups.items()]


def kept_samples(samples: list[dict], records: list[dict] | None = None) -> list[dict]:
    """The readings statistics may use: not marked `discard` (an experiment's settling
    readings), and, given the records, only those of measured attempts (not warm-ups)."""
    keep = None
    if records is not None:
        keep = {r["attempt"] for r in measured(records)}
    return [s for s in samples if not s.get("discard") and (keep is None or s.get("attempt") in keep)]


def describe_samples(samples: list[dict], field: str, records: list[dict] | None = None) -> dict:
    return describe([s.get(field) for s in kept_samples(samples, records) if s.get(field) is not None])
