"""One load point's figures from its request lines, and the knee of a sweep (docs/load.md).

Percentiles come from the one statistics engine (orchestrator/stats.py). A request *meets the
budget* when it finished ok, its TTFT is within the budget's TTFT, and the 90th percentile of its
own token gaps is within the budget's TBT (the verdict's p90, per request). Goodput is the rate of
such requests over the point's window (first send to last answer), throughput the rate of ok ones.
A rate is *sustained* when at least SUSTAINED of the requests sent at it met the budget."""

from __future__ import annotations

from orchestrator import fields as F
from orchestrator import stats
from orchestrator.load import format as fmt
from orchestrator.slo import TBT_S, TTFT_S

SUSTAINED = 0.9  # share of a point's requests that must meet the budget
LAG_BOUND_S = 0.050  # a point whose p99 send lag exceeds this is flagged: the client, not the server, set its pace
LATENCY_KEYS = {fmt.TTFT: F.TTFT_S, fmt.TPOT: F.TPOT_S, fmt.E2E: fmt.E2E_S, fmt.QUEUE_WAIT: fmt.QUEUE_WAIT_S}


def meets(req: dict, slo: dict) -> bool:
    if req.get(F.STATUS) != "ok" or req.get(F.TTFT_S) is None or req[F.TTFT_S] > slo[TTFT_S]:
        return False
    gaps = req.get(F.TBT_S) or []
    return not gaps or stats.percentile(gaps, 90) <= slo[TBT_S]


def _pct(values) -> dict:
    d = stats.describe(values)
    return {k: d[k] for k in fmt.PCT_KEYS}


def figures(point: dict, reqs: list[dict], window: dict | None, slo: dict) -> dict:
    """`point`: the plan's entry (profile.Point.to_json()); `reqs`: its kept request lines; `window`:
    its points.jsonl line (client and server CPU, samplers), None while it has not finished."""
    ok = [r for r in reqs if r.get(F.STATUS) == "ok"]
    met = [r for r in reqs if meets(r, slo)]
    sent = sorted(r[fmt.SENT_S] for r in reqs if r.get(fmt.SENT_S) is not None)
    ends = [r[fmt.END_S] for r in reqs if r.get(fmt.END_S) is not None]
    duration = max(ends) - sent[0] if sent and ends else None
    tokens = sum(r.get(F.OUTPUT_TOKENS) or 0 for r in ok)
    lags = [r[fmt.SEND_LAG_S] for r in reqs if r.get(fmt.SEND_LAG_S) is not None]
    lag = _pct(lags)
    checked = [r for r in ok if isinstance(r.get(F.VALIDATION), dict)]

    def rate(n):
        return n / duration if duration else None

    out = {
        fmt.LABEL: point.get(fmt.LABEL), fmt.POINT_KIND: point[fmt.POINT_KIND], fmt.RATE: point.get(fmt.RATE),
        fmt.CONCURRENCY: point.get(fmt.CONCURRENCY), fmt.N_SENT: len(reqs), fmt.N_OK: len(ok),
        fmt.N_FAILED: len(reqs) - len(ok), fmt.N_MET: len(met),
        fmt.SLO_ATTAINMENT: len(met) / len(reqs) if reqs else None,
        fmt.DURATION_S: duration,
        fmt.ACHIEVED_RPS: (len(sent) - 1) / (sent[-1] - sent[0]) if len(sent) > 1 and sent[-1] > sent[0] else None,
        fmt.THROUGHPUT_RPS: rate(len(ok)), fmt.GOODPUT_RPS: rate(len(met)),
        fmt.TOKEN_THROUGHPUT_TOK_S: rate(tokens), fmt.OUTPUT_TOKENS: tokens,
        **{k: _pct(r.get(key) for r in ok) for k, key in LATENCY_KEYS.items()},
        fmt.TBT: _pct(g for r in ok for g in (r.get(F.TBT_S) or [])),
        fmt.SEND_LAG: lag, fmt.SEND_LAG_FLAG: lag[fmt.P99] is not None and lag[fmt.P99] > LAG_BOUND_S,
        fmt.VALIDATED: {fmt.N: len(checked),
                        fmt.VALIDATED_OK: sum(1 for r in checked if r[F.VALIDATION].get(fmt.CHECK_OK)),
                        fmt.PREFILL_SKIPPED: sum(1 for r in checked
                                                 if fmt.PREFILL in r[F.VALIDATION].get(fmt.SKIPPED, {}))},
    }
    att = out[fmt.SLO_ATTAINMENT]
    out[fmt.SUSTAINED] = att is not None and att >= SUSTAINED
    out.update(_window(window, len(reqs), tokens))
    return out


def _window(window: dict | None, n: int, tokens: int) -> dict:
    w = window or {}
    smp = w.get(fmt.SAMPLER_FIGURES) or {}
    energy = smp.get(F.ENERGY_J)
    client = w.get(fmt.CLIENT_CPU_S)
    return {
        fmt.WINDOW_S: w.get(fmt.WINDOW_S), fmt.CLIENT_CPU_S: client,
        fmt.CLIENT_CPU_PER_REQUEST_S: client / n if client is not None and n else None,
        fmt.SERVER_CPU_S: w.get(fmt.SERVER_CPU_S), fmt.SERVER_PEAK_RSS_BYTES: w.get(fmt.SERVER_PEAK_RSS_BYTES),
        fmt.ENERGY_J: energy, fmt.ENERGY_PER_REQUEST_J: energy / n if energy is not None and n else None,
        fmt.ENERGY_PER_TOKEN_J: energy / tokens if energy is not None and tokens else None,
        fmt.TEMP_PEAK_C: smp.get(F.TEMP_PEAK_C), fmt.THROTTLED: smp.get(F.THROTTLED),
        fmt.GPU_LOAD_MEAN_PCT: smp.get(F.GPU_LOAD_DECODE_MEAN_PCT),
    }


def knee(points: list[dict]) -> dict:
    """The highest offered rate sustained with every lower rate sustained too, and its interval: from
    it to the first rate that was not (None above when every rate tried was sustained; None below
    when even the lowest was not)."""
    rated = sorted((p for p in points if p.get(fmt.RATE) is not None), key=lambda p: p[fmt.RATE])
    last = None
    for p in rated:
        if not p[fmt.SUSTAINED]:
            return {fmt.RATE: last, fmt.INTERVAL: [last, p[fmt.RATE]], fmt.FIRST_UNSUSTAINED: p[fmt.RATE]}
        last = p[fmt.RATE]
    return {fmt.RATE: last, fmt.INTERVAL: [last, None], fmt.FIRST_UNSUSTAINED: None}


def sentence(k: dict, slo: dict, mix: str) -> str:
    budget = f"TTFT ≤ {slo[TTFT_S]:g} s and TBT p90 ≤ {slo[TBT_S] * 1000:g} ms per request"
    share = f"{SUSTAINED:.0%} of requests"
    rate, above = k[fmt.RATE], k[fmt.FIRST_UNSUSTAINED]
    if rate is None and above is None:
        return "no rate was tried: no answer."
    if rate is None:
        return (f"this board does not serve {mix} within the budget ({budget}) at any rate tried: fewer than "
                f"{share} met it even at {above:g} requests/s.")
    tail = f"; at {above:g} requests/s fewer did" if above is not None else "; no higher rate was tried"
    return (f"this board serves up to {rate:g} requests/s of {mix} within the budget ({budget}, "
            f"for at least {share}){tail}.")


def results(doc: dict, requests: list[dict], windows: dict[int, dict]) -> dict:
    """load.json's `results`: every finished point's figures, the knee and the answer."""
    slo = doc[fmt.SLO]
    pts = []
    for i, p in enumerate(doc[fmt.PLAN]):
        if i not in windows:
            continue
        pts.append({fmt.INDEX: i, **figures(p, [r for r in requests if r[fmt.POINT] == i], windows[i], slo)})
    k = knee(pts)
    return {fmt.RESULT_POINTS: pts, fmt.KNEE: k, fmt.ANSWER: sentence(k, slo, doc.get(fmt.MIX, "this mix"))}
