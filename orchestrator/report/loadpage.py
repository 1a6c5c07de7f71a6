"""The page of a load folder (`edgebench report DIR` on what `edgebench load` wrote): the answer in
one sentence, latency percentiles against the offered rate, goodput against it with the knee, energy
per request against it, and each point's table. Figures come from load.json's `results` (computed
by orchestrator/load/point.py from the request lines); model output and errors are escaped."""

from __future__ import annotations

from pathlib import Path

import jinja2
import polars as pl

from orchestrator import fields as F
from orchestrator.fsutil import atomic_write
from orchestrator.load import format as fmt
from orchestrator.load import point as load_point
from orchestrator.report.figures import PALETTE, Figure, _svg, _theme
from orchestrator.slo import TBT_S, TTFT_S

NO_ENERGY = ("no power readings in this load folder: energy per request needs a GPU/board sampler with a power "
             "rail (jetson-stats, tegrastats or NVML); run edgebench load on a board that has one")
PERCENTILES = (fmt.P50, fmt.P90, fmt.P99)
METRICS = {fmt.TTFT: "TTFT", fmt.TBT: "TBT (every gap)", fmt.TPOT: "TPOT", fmt.E2E: "end to end"}


def x_of(p: dict) -> float | None:
    """Where a point sits on the rate axis: its offered rate, or for closed loop the rate it achieved."""
    return p[fmt.RATE] if p.get(fmt.RATE) is not None else p.get(fmt.ACHIEVED_RPS)


def results_of(folder: Path, slo: dict | None = None) -> tuple[dict, dict]:
    """(load.json, its results): recomputed from the request lines when the sweep did not finish, or
    under another budget than the one it ran with (`report --slo`)."""
    doc = fmt.read_doc(folder)
    if slo is not None:
        doc[fmt.SLO] = slo
    res = doc.get(fmt.RESULTS)
    if res is None or slo is not None:
        res = load_point.results(doc, fmt.kept_requests(folder), fmt.finished_points(folder))
    return doc, res


def latency_figure(res: dict, slo: dict) -> Figure:
    import plotnine as p9

    f = Figure("load-latency", "Latency percentiles against the offered rate",
               "Each panel one latency (log scale); lines p50, p90 and p99 of the requests sent at that rate "
               "(closed-loop points at the rate they achieved); dashed: the budget.")
    rows = [{"x": x_of(p), "metric": METRICS[m], "percentile": q, "s": p[m][q]}
            for p in res[fmt.RESULT_POINTS] for m in METRICS for q in PERCENTILES
            # a log axis: a gap of zero (two tokens in one read) has no place on it
            if x_of(p) is not None and p[m][q] is not None and p[m][q] > 0]
    if not rows:
        f.absent = "no load point finished a request: nothing to draw"
        return f
    df = pl.DataFrame(rows).to_pandas()
    budget = pl.DataFrame({"metric": [METRICS[fmt.TTFT], METRICS[fmt.TBT]], "s": [slo[TTFT_S], slo[TBT_S]]}).to_pandas()
    plot = (p9.ggplot(df, p9.aes("x", "s", color="percentile")) + p9.geom_line() + p9.geom_point()
            + p9.geom_hline(budget, p9.aes(yintercept="s"), linetype="dashed", color="#666666")
            + p9.facet_wrap("~metric", scales="free_y", ncol=4) + p9.scale_color_manual(values=PALETTE)
            + p9.scale_y_log10() + p9.scale_x_log10()
            + p9.labs(x="offered rate, requests/s (log scale)", y="seconds (log scale)") + _theme())
    f.svg = _svg(plot, 9.0, 3.2)
    return f


def goodput_figure(res: dict) -> Figure:
    import plotnine as p9

    k = res[fmt.KNEE]
    f = Figure("load-goodput", "Goodput against the offered rate, with the knee",
               f"Goodput: requests per second that met the budget; throughput: those that finished ok; dotted: "
               f"the offered rate. Shaded: where the knee lies (from the highest rate at which at least "
               f"{load_point.SUSTAINED:.0%} of requests met the budget to the first at which fewer did).")
    rows = [{"x": x_of(p), "what": what, "rps": p[key]} for p in res[fmt.RESULT_POINTS]
            for what, key in (("goodput", fmt.GOODPUT_RPS), ("throughput", fmt.THROUGHPUT_RPS))
            if x_of(p) is not None and p[key] is not None]
    if not rows:
        f.absent = "no load point finished a request: nothing to draw"
        return f
    df = pl.DataFrame(rows).to_pandas()
    top = max(r["x"] for r in rows)
    offered = pl.DataFrame({"x": sorted({r["x"] for r in rows})}).with_columns(rps=pl.col("x")).to_pandas()
    plot = (p9.ggplot(df, p9.aes("x", "rps", color="what"))
            + p9.geom_line(offered, p9.aes("x", "rps"), inherit_aes=False, linetype="dotted")
            + p9.geom_line() + p9.geom_point() + p9.scale_color_manual(values=PALETTE) + p9.scale_x_log10()
            # the offered-rate line would otherwise set the scale far above what was served
            + p9.coord_cartesian(ylim=(0, 1.3 * max(r["rps"] for r in rows)))
            + p9.labs(x="offered rate, requests/s (log scale)", y="requests/s", color="") + _theme())
    lo, hi = k[fmt.INTERVAL]
    if lo is not None or hi is not None:
        plot += p9.annotate("rect", xmin=lo or min(r["x"] for r in rows) / 2, xmax=hi if hi is not None else top,
                            ymin=0, ymax=1.3 * max(r["rps"] for r in rows), fill="#e7298a", alpha=0.12)
    if k[fmt.RATE] is not None:
        plot += p9.geom_vline(xintercept=k[fmt.RATE], color="#e7298a")
    f.svg = _svg(plot)
    return f


def energy_figure(res: dict) -> Figure:
    import plotnine as p9

    f = Figure("load-energy", "Energy per request against the offered rate",
               "The board's energy over each load point's window divided by the requests sent in it.")
    rows = [{"x": x_of(p), "j": p[fmt.ENERGY_PER_REQUEST_J]} for p in res[fmt.RESULT_POINTS]
            if x_of(p) is not None and p.get(fmt.ENERGY_PER_REQUEST_J) is not None]
    if not rows:
        f.absent = NO_ENERGY
        return f
    plot = (p9.ggplot(pl.DataFrame(rows).to_pandas(), p9.aes("x", "j")) + p9.geom_line(color=PALETTE[0])
            + p9.geom_point(color=PALETTE[0]) + p9.scale_x_log10()
            + p9.labs(x="offered rate, requests/s (log scale)", y="joules per request")
            + _theme())
    f.svg = _svg(plot)
    return f


PAGE = jinja2.Environment(autoescape=True).from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edgebench load: {{ name }}</title>
<style>body{font-family:sans-serif;max-width:1100px;margin:1em auto;padding:0 1em}
table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}
.answer{font-size:130%;font-weight:bold}.absent{color:#a00}pre{white-space:pre-wrap}</style></head><body>
<h1>Load sweep {{ name }}</h1>
<p class="answer">{{ res.answer }}</p>
<p>Knee: {{ num(res.knee.rate) }} requests/s, between {{ num(res.knee.interval[0]) }} and
{{ num(res.knee.interval[1]) }}. Budget: TTFT ≤ {{ doc.slo.ttft_s }} s, TBT p90 ≤ {{ doc.slo.tbt_s }} s per
request. Server: {{ doc.server.binary if doc.server else "-" }}, {{ doc.slots }} slots; model
{{ (doc.model or {}).path }}{% if (doc.model or {}).synthetic %} (synthetic twin){% endif %}.</p>
{% for f in figures %}<h2 id="{{ f.id }}">{{ f.title }}</h2>
{% if f.svg %}<img alt="{{ f.title }}" src="{{ f.data_uri }}"><p>{{ f.caption }}</p>
{% else %}<p class="absent">{{ f.absent }}</p>{% endif %}{% endfor %}
<h2>Load points</h2><table><tr><th>point</th><th>ok/sent</th><th>met</th><th>TTFT p50/p90/p99 ms</th>
<th>TBT p90 ms</th><th>E2E p90 ms</th><th>throughput /s</th><th>goodput /s</th><th>send lag p99 ms</th>
<th>client CPU / request ms</th><th>server peak RSS MB</th><th>checked vs server timings</th></tr>
{% for p in res.points %}<tr><td>{{ p.label }}</td><td>{{ p.n_ok }}/{{ p.n_sent }}</td><td>{{ p.n_met }}</td>
<td>{{ ms(p.ttft.p50) }}/{{ ms(p.ttft.p90) }}/{{ ms(p.ttft.p99) }}</td><td>{{ ms(p.tbt.p90) }}</td>
<td>{{ ms(p.e2e.p90) }}</td><td>{{ num(p.throughput_rps) }}</td><td>{{ num(p.goodput_rps) }}</td>
<td>{{ ms(p.send_lag.p99) }}{% if p.send_lag_flag %} (client-bound){% endif %}</td>
<td>{{ ms(p.client_cpu_per_request_s) }}</td><td>{{ mb(p.server_peak_rss_bytes) }}</td>
<td>{{ p.validated.ok }}/{{ p.validated.n }}{% if p.validated.prefill_skipped %} ({{ p.validated.prefill_skipped }}
TTFT checks set aside: queued){% endif %}</td></tr>{% endfor %}</table>
{% if failures %}<h2>Failed requests</h2><table>{% for r in failures %}<tr><td>{{ r.query_id }}</td>
<td>{{ r.status }}</td><td><pre>{{ r.error }}</pre></td></tr>{% endfor %}</table>{% endif %}
{% if examples %}<h2>An answer per point</h2>{% for label, text in examples %}<h3>{{ label }}</h3>
<pre>{{ text }}</pre>{% endfor %}{% endif %}
</body></html>
""")


def render(folder: Path, slo: dict | None = None) -> Path:
    folder = Path(folder)
    doc, res = results_of(folder, slo)
    reqs = fmt.kept_requests(folder)
    labels = {p[fmt.INDEX]: p[fmt.LABEL] for p in res[fmt.RESULT_POINTS]}
    examples, seen = [], set()
    for r in reqs:
        if r.get(F.STATUS) == "ok" and r[fmt.POINT] not in seen and r.get(F.OUTPUT_TEXT):
            seen.add(r[fmt.POINT])
            examples.append((labels.get(r[fmt.POINT], r[fmt.POINT]), r[F.OUTPUT_TEXT][:2000]))
    html = PAGE.render(
        name=folder.name, doc=doc, res=res, examples=examples,
        figures=[latency_figure(res, doc[fmt.SLO]), goodput_figure(res), energy_figure(res)],
        failures=[r for r in reqs if r.get(F.STATUS) != "ok"][:50],
        ms=lambda v: "-" if v is None else f"{v * 1000:.0f}", num=lambda v: "-" if v is None else f"{v:.3g}",
        mb=lambda v: "-" if v is None else f"{v / 1e6:.0f}")
    out = folder / fmt.REPORT_HTML
    atomic_write(out, html.encode("utf-8"))
    return out
