"""The one statistics engine: the terminal summary, the manifest's `results`, summary.json, the
HTML report, `report --compare` and the CSV all describe values through `describe`, so a figure
and its interval read the same wherever they are printed.

Conventions (docs/measurement.md, "Statistics"):
- percentiles interpolate linearly between closest ranks (numpy's default);
- `std` is the *sample* standard deviation (n − 1 in the denominator), None below two values;
- the 95% confidence interval of the mean is mean ± t(0.975, n − 1) · std / √n, None below two values.

Plain Python on lists: the measuring process prints these and never imports polars."""

from __future__ import annotations

import math
import statistics

from orchestrator import fields as F

STAT_KEYS = ("n", "mean", "std", "min", "max", "p50", "p90", "p99", "ci_half", "ci_lo", "ci_hi")

# Two-sided 95% Student t quantiles (t_{0.975, df}) for df 1..30; beyond, a Cornish-Fisher
# expansion around the normal quantile, within 1e-4 of the exact value. A table rather than
# scipy: the measuring process must stay light.
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


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default), q in [0, 100]."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def describe(values, scale: float = 1.0) -> dict:
    """n, mean, sample std, min, max, p50/p90/p99 and the 95% interval of the mean (`ci_half`,
    `ci_lo`, `ci_hi`), each multiplied by `scale` (a unit change). Missing values are skipped."""
    vals = sorted(float(v) * scale for v in values if v is not None)
    n = len(vals)
    if not n:
        return dict.fromkeys(STAT_KEYS) | {"n": 0}
    mean = statistics.fmean(vals)
    # fsum of squared deviations rather than statistics.stdev: the same value to the last digit or
    # so, without exact fractions, which took seconds on the half million token gaps of a long run
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in vals) / (n - 1)) if n > 1 else None
    half = t975(n - 1) * std / math.sqrt(n) if n > 1 else None
    return {"n": n, "mean": mean, "std": std, "min": vals[0], "max": vals[-1],
            "p50": percentile(vals, 50), "p90": percentile(vals, 90), "p99": percentile(vals, 99),
            "ci_half": half, "ci_lo": None if half is None else mean - half,
            "ci_hi": None if half is None else mean + half}


def measured(records: list[dict]) -> list[dict]:
    """Warm-ups are recorded to be seen, never counted."""
    return [r for r in records if r.get(F.PHASE, "measure") == "measure"]


def ok(records: list[dict]) -> list[dict]:
    """The successful measured attempts: what every statistic is computed from."""
    return [r for r in measured(records) if r.get(F.STATUS) == "ok"]


def repetition_spread(records: list[dict], key: str = F.TOTAL_S) -> dict:
    """How much repetitions of the same (query, variant) disagree: per group of two or more ok
    measured repetitions, the coefficient of variation of `key`; described over the groups."""
    groups: dict = {}
    for r in ok(records):
        if r.get(key) is not None:
            groups.setdefault((r[F.QUERY_ID], r.get(F.VARIANT_ID, "")), []).append(r[key])
    cvs = [statistics.stdev(v) / statistics.fmean(v) for v in groups.values() if len(v) > 1 and statistics.fmean(v)]
    return describe(cvs)


def by_category(records: list[dict], categories: tuple[str, ...]) -> list[dict]:
    """One row per category: TTFT (and cold TTFT, model load included) and TBT (pooled over every
    token gap of the category), decode tokens/s, total time, peak RSS, failures and the spread of
    repetitions. Warm-ups are left out."""
    rows = []
    recs_all = measured(records)
    for cat in categories:
        recs = [r for r in recs_all if r.get(F.CATEGORY) == cat]
        if not recs:
            continue
        good = [r for r in recs if r.get(F.STATUS) == "ok"]
        rows.append({
            F.CATEGORY: cat,
            "n": len(recs),
            "failures": len(recs) - len(good),
            "invalid": sum(1 for r in good if not (r.get(F.VALIDATION) or {}).get("ok", False)),
            "ttft": describe([r.get(F.TTFT_S) for r in good]),
            "cold_ttft": describe([r.get(F.COLD_TTFT_S) for r in good]),
            "tbt": describe([x for r in good for x in r.get(F.TBT_S) or []]),
            F.DECODE_TOK_S: describe([r.get(F.DECODE_TOK_S) for r in good]),
            "total": describe([r.get(F.TOTAL_S) for r in good]),
            F.ENERGY_PER_TOKEN_J: describe([r.get(F.ENERGY_PER_TOKEN_J) for r in good]),
            F.ENERGY_NET_PER_TOKEN_J: describe([r.get(F.ENERGY_NET_PER_TOKEN_J) for r in good]),
            F.PEAK_RSS_BYTES: max((r.get(F.PEAK_RSS_BYTES) or 0 for r in recs), default=0) or None,
            "repetitions": max((r.get(F.REPETITION, 0) + 1 for r in recs), default=0),
            "total_cv": repetition_spread(recs)["p50"],
        })
    return rows


def ci_by_item(records: list[dict], keys: tuple[str, ...] = (F.TTFT_S, F.TPOT_S, F.TOTAL_S)) -> list[dict]:
    """Per (query, variant), over its ok measured repetitions: each key described (interval included)."""
    groups: dict = {}
    for r in ok(records):
        groups.setdefault((r[F.QUERY_ID], r.get(F.VARIANT_ID, "")), []).append(r)
    return [{F.QUERY_ID: qid, F.VARIANT_ID: vid, F.CATEGORY: recs[0][F.CATEGORY], "n": len(recs),
             **{k: describe([r.get(k) for r in recs]) for k in keys}}
            for (qid, vid), recs in groups.items()]


def difference(a: list[float], b: list[float]) -> dict:
    """The difference of two means, mean(a) − mean(b), with Welch's 95% interval (the two sides
    need not share a variance or a count). Interval bounds are None when a side has fewer than two."""
    da, db = describe(a), describe(b)
    if not da["n"] or not db["n"]:
        return {"difference": None, "ci_half": None, "ci_lo": None, "ci_hi": None, "df": None}
    diff = da["mean"] - db["mean"]
    if da["std"] is None or db["std"] is None:
        return {"difference": diff, "ci_half": None, "ci_lo": None, "ci_hi": None, "df": None}
    va, vb = da["std"] ** 2 / da["n"], db["std"] ** 2 / db["n"]
    se = math.sqrt(va + vb)
    if se == 0:
        return {"difference": diff, "ci_half": 0.0, "ci_lo": diff, "ci_hi": diff, "df": da["n"] + db["n"] - 2}
    df = (va + vb) ** 2 / (va**2 / (da["n"] - 1) + vb**2 / (db["n"] - 1))
    half = t975(max(1, math.floor(df))) * se
    return {"difference": diff, "ci_half": half, "ci_lo": diff - half, "ci_hi": diff + half, "df": df}
