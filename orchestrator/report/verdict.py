"""The answer first: per category, can this board answer these queries within a latency budget?

The budget (`--slo ttft=2s,tbt=200ms`) bounds the 90th percentile of TTFT and of every gap between
tokens (TBT): a category passes when 9 in 10 of its queries got their first token within the TTFT
budget and 9 in 10 of its token gaps stayed within the TBT budget. The defaults are those of an
interactive agent: a reply that starts within 2 s, and a stream of at least 5 tokens a second
(200 ms a token), about a person's reading speed.

The figures come from the one statistics engine (orchestrator/stats.py, `by_category`), so the
page, summary.json, `report --format md` and the manifest's `results` agree to the digit."""

from __future__ import annotations

from orchestrator import fields as F

# parse_slo and DEFAULT_SLO live in orchestrator/slo.py (the measuring side reads --slo too); named here
# for the report's callers
from orchestrator.slo import DEFAULT_SLO, TBT_S, TTFT_S, parse_slo, slo_text  # noqa: F401
from orchestrator.slo import dur as _dur
from orchestrator.store import SUMMARY_JSON
from orchestrator.summary import ci_text, ms

SUMMARY = SUMMARY_JSON


def judge(rows: list[dict], slo: dict) -> list[dict]:
    """One verdict per `stats.by_category` row: pass, fail, or no data, and one sentence."""
    out = []
    for r in rows:
        ttft, tbt, tok = r["ttft"], r["tbt"], r["decode_tok_s"]
        checks = []
        if ttft["n"]:
            checks.append(ttft["p90"] <= slo[TTFT_S])
        if tbt["n"]:
            checks.append(tbt["p90"] <= slo[TBT_S])
        verdict = "no data" if not ttft["n"] else ("pass" if all(checks) else "fail")
        out.append({F.CATEGORY: r[F.CATEGORY], "verdict": verdict, "sentence": _sentence(r, verdict, slo),
                    "n": r["n"], "failures": r["failures"], "ttft": ttft, "cold_ttft": r["cold_ttft"], "tbt": tbt,
                    "decode_tok_s": tok, F.PEAK_RSS_BYTES: r[F.PEAK_RSS_BYTES],
                    F.ENERGY_PER_TOKEN_J: r[F.ENERGY_PER_TOKEN_J],
                    F.ENERGY_NET_PER_TOKEN_J: r[F.ENERGY_NET_PER_TOKEN_J]})
    return out


def _ci(d: dict, unit: str) -> str:
    if d.get("ci_lo") is None:
        return "no interval from a single query"
    return f"95% CI {d['ci_lo']:.1f}–{d['ci_hi']:.1f} {unit}"


def _sentence(r: dict, verdict: str, slo: dict) -> str:
    ttft, tbt, tok = r["ttft"], r["tbt"], r["decode_tok_s"]
    cat = r[F.CATEGORY]
    if verdict == "no data":
        return f"{cat}: no successful query to judge ({r['failures']} of {r['n']} failed)."
    head = "meets the budget" if verdict == "pass" else "misses the budget"
    parts = [f"{cat} {head}: 90% of {ttft['n']} queries had their first token within {_dur(ttft['p90'])} "
             f"(budget {_dur(slo[TTFT_S])}; median {_dur(ttft['p50'])}, mean {ci_text(ttft)} ms"
             f"{'' if ttft.get('ci_lo') is None else ' with its 95% interval'})"]
    if tbt["n"]:
        parts.append(f"90% of token gaps within {_dur(tbt['p90'])} (budget {_dur(slo[TBT_S])})")
    if tok["n"]:
        parts.append(f"decoding at {tok['mean']:.1f} tokens/s ({_ci(tok, 'tok/s')})")
    tail = f"; {r['failures']} of {r['n']} queries failed" if r["failures"] else ""
    return ", ".join(parts) + tail + "."


def summary_json(verdicts: list[dict], slo: dict, source: dict) -> dict:
    """summary.json: the per-category answer for scripts (seconds and tokens/s; stats.describe's keys)."""
    return {"schema_version": 1, "source": source, "slo": slo, "slo_text": slo_text(slo),
            "categories": verdicts}


def markdown(verdicts: list[dict], slo: dict) -> str:
    """The per-category answer as a Markdown table (`edgebench report --format md`)."""
    lines = [f"Budget: {slo_text(slo)}", "",
             "| category | verdict | n | failed | TTFT p50 (ms) | TTFT p90 (ms) | TTFT mean [95% CI] (ms) "
             "| TBT p90 (ms) | decode tok/s (mean) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for v in verdicts:
        t, g, k = v["ttft"], v["tbt"], v["decode_tok_s"]
        lines.append(f"| {v['category']} | {v['verdict']} | {v['n']} | {v['failures']} | {ms(t['p50'])} "
                     f"| {ms(t['p90'])} | {ci_text(t)} | {ms(g['p90'])} "
                     f"| {'-' if k['mean'] is None else format(k['mean'], '.1f')} |")
    return "\n".join(lines) + "\n"


