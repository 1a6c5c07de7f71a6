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

SUSTAINED = 0.9  # share of a point's requests that must meet the budget
LAG_BOUND_S = 0.050  # a point whose p99 send lag exceeds this is flagged: the client, not the server, set its pace
LATENCY_KEYS = {"ttft": F.TTFT_S, "tpot": F.TPOT_S, "e2e": fmt.E2E_S, "queue_wait": fmt.QUEUE_WAIT_S}
PCT_KEYS = ("n", "mean", "p50", "p90", "p99", "max")


def meets(req: dict, slo: dict) -> bool:
    if req.get(F.STATUS) != "ok" or req.get(F.TTFT_S) is None or req[F.TTFT_S] > slo["ttft_s"]:
        return False
    gaps = req.get(F.TBT_S) or []
    return not gaps or stats.percentile(gaps, 90) <= slo["tbt_s"]


def _pct(values) -> dict:
    d = stats.describe(values)
    return {k: d[k] for k in PCT_KEYS}


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
        "label": point.get("label"), "kind": point["kind"], "rate": point.get("rate"),
        "concurrency": point.get("concurrency"), "n_sent": len(reqs), "n_ok": len(ok),
        "n_failed": len(reqs) - len(ok), "n_met": len(met),
        "slo_attainment": len(met) / len(reqs) if reqs else None,
        "duration_s": duration,
        "achieved_rps": (len(sent) - 1) / (sent[-1] - sent[0]) if len(sent) > 1 and sent[-1] > sent[0] else None,
        "throughput_rps": rate(len(ok)), "goodput_rps": rate(len(met)),
        "token_throughput_tok_s": rate(tokens), "output_tokens": tokens,
        **{k: _pct(r.get(key) for r in ok) for k, key in LATENCY_KEYS.items()},
        "tbt": _pct(g for r in ok for g in (r.get(F.TBT_S) or [])),
        "send_lag": lag, "send_lag_flag": lag["p99"] is not None and lag["p99"] > LAG_BOUND_S,
        "validated": {"n": len(checked), "ok": sum(1 for r in checked if r[F.VALIDATION].get("ok")),
                      "prefill_skipped": sum(1 for r in checked if "prefill" in r[F.VALIDATION].get("skipped", {}))},
    }
    out["sustained"] = out["slo_attainment"] is not None and out["slo_attainment"] >= SUSTAINED
    out.update(_window(window, len(reqs), tokens))
    return out


def _window(window: dict | None, n: int, tokens: int) -> dict:
    w = window or {}
    smp = w.get(fmt.SAMPLER_FIGURES) or {}
    energy = smp.get(F.ENERGY_J)
    client = w.get(fmt.CLIENT_CPU_S)
    return {
        "window_s": w.get(fmt.WINDOW_S), "client_cpu_s": client,
        "client_cpu_per_request_s": client / n if client is not None and n else None,
        "server_cpu_s": w.get(fmt.SERVER_CPU_S), "server_peak_rss_bytes": w.get(fmt.SERVER_PEAK_RSS_BYTES),
        "energy_j": energy, "energy_per_request_j": energy / n if energy is not None and n else None,
        "energy_per_token_j": energy / tokens if energy is not None and tokens else None,
        "temp_peak_c": smp.get(F.TEMP_PEAK_C), "throttled": smp.get(F.THROTTLED),
        "gpu_load_mean_pct": smp.get("gpu_load_decode_mean_pct"),
    }


def knee(points: list[dict]) -> dict:
    """The highest offered rate sustained with every lower rate sustained too, and its interval: from
    it to the first rate that was not (None above when every rate tried was sustained; None below
    when even the lowest was not)."""
    rated = sorted((p for p in points if p.get("rate") is not None), key=lambda p: p["rate"])
    last = None
    for p in rated:
        if not p["sustained"]:
            return {"rate": last, "interval": [last, p["rate"]], "first_unsustained": p["rate"]}
        last = p["rate"]
    return {"rate": last, "interval": [last, None], "first_unsustained": None}


def sentence(k: dict, slo: dict, mix: str) -> str:
    budget = f"TTFT ≤ {slo['ttft_s']:g} s and TBT p90 ≤ {slo['tbt_s'] * 1000:g} ms per request"
    share = f"{SUSTAINED:.0%} of requests"
    if k["rate"] is None and k["first_unsustained"] is None:
        return "no rate was tried: no answer."
    if k["rate"] is None:
        return (f"this board does not serve {mix} within the budget ({budget}) at any rate tried: fewer than "
                f"{share} met it even at {k['first_unsustained']:g} requests/s.")
    above = (f"; at {k['first_unsustained']:g} requests/s fewer did" if k["first_unsustained"] is not None
             else "; no higher rate was tried")
    return (f"this board serves up to {k['rate']:g} requests/s of {mix} within the budget ({budget}, "
            f"for at least {share}){above}.")


def results(doc: dict, requests: list[dict], windows: dict[int, dict]) -> dict:
    """load.json's `results`: every finished point's figures, the knee and the answer."""
    slo = doc["slo"]
    pts = []
    for i, p in enumerate(doc["points"]):
        if i not in windows:
            continue
        pts.append({"index": i, **figures(p, [r for r in requests if r[fmt.POINT] == i], windows[i], slo)})
    k = knee(pts)
    return {"points": pts, "knee": k, "answer": sentence(k, slo, doc.get("mix", "this mix"))}
