"""One self-contained page per run or experiment: figures inlined as data URIs, no script, no
reference outside the folder, every prompt, output and error escaped by Jinja2's autoescape.
Rendering reads the folder and adds report.html, the per-query pages queries-N.html (querypages.py),
queries.csv and queries.parquet; it never changes what the run recorded."""

from __future__ import annotations

import json
from pathlib import Path

import jinja2
import markupsafe
import polars as pl

from orchestrator import fields as F
from orchestrator.experiments import index
from orchestrator.fsutil import atomic_write
from orchestrator.report import analysis, export, figures, load, querypages, verdict
from orchestrator.store import MANIFEST_ENGINE, REPORT_HTML
from orchestrator.summary import ci_text, ms
from orchestrator.workloads.schema import CATEGORIES

REPORT = REPORT_HTML


def env() -> jinja2.Environment:
    e = jinja2.Environment(loader=jinja2.PackageLoader("orchestrator", "templates"), autoescape=True,
                           undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    e.filters["num"] = num
    e.filters["folded"] = folded
    e.globals["ms"] = ms
    e.globals["ci_ms"] = ci_text
    return e



# A text longer than FOLD_AT characters folds into a <details> whose summary shows its first FOLD_SHOWN.
FOLD_AT = 160
FOLD_SHOWN = 120


def folded(text) -> markupsafe.Markup:
    """A per-query table cell's text, escaped, folded when long. A filter rather than a template
    macro: twenty thousand macro calls were a second of rendering a 10 000-query run's pages."""
    if text is None:
        return markupsafe.Markup("-")
    if len(text) > FOLD_AT:
        return markupsafe.Markup(f"<details><summary>{markupsafe.escape(text[:FOLD_SHOWN])}… ({len(text)} characters)"
                                 f"</summary>{markupsafe.escape(text)}</details>")
    return markupsafe.escape(text)


def num(x, digits: int = 1) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    return f"{x:,.{digits}f}"


def main_records(src: load.Source) -> list[dict]:
    """The records the per-category answer describes: an experiment's categories part where it has one."""
    if any(r.get(load.ROLE) == index.CATEGORIES for r in src.records):
        return [r for r in src.records if r.get(load.ROLE) == index.CATEGORIES]
    return src.records


def pair_categories(src: load.Source) -> tuple[str, ...]:
    """The matched pair's categories in its plan's order, as its recorded plan has them."""
    plans = [p.get("plan") for p in src.parts if p.get(load.ROLE) == index.MATCHED_PAIR]
    exp = index.run_experiment(src.manifest)
    if exp and index.role(exp.get("plan")) == index.MATCHED_PAIR:
        plans.append(exp["plan"])
    return tuple((plans[0] or {}).get("categories") or ()) if plans else ()


def engine_parts(src: load.Source) -> list[dict]:
    """The categories part and the part under another engine, each with its engine and its
    server's one model load (an `experiment engines` folder)."""
    out = []
    for role in (index.CATEGORIES, index.OTHER_ENGINE):
        for p in src.parts:
            if p.get(load.ROLE) == role and p.get("present"):
                eng = p.get(MANIFEST_ENGINE) or {}
                out.append({"name": p["name"], "program": eng.get("name") or "main",
                            "server_load_s": eng.get("server_load_s")})
                break
    return out


def answer(src: load.Source, slo: dict) -> list[dict]:
    """Per category, the verdict against the budget: the statistics engine's rows, judged."""
    from orchestrator import stats

    return verdict.judge(stats.by_category(main_records(src), CATEGORIES), slo)


def context(src: load.Source, bandwidth_gbs: float | None = None, slo: dict | None = None) -> dict:
    q_all = load.queries_frame(src)
    q = load.measured(q_all)
    main = analysis.main_part(q)
    s = load.samples_frame(src)
    tbt = tbt_all = load.tbt_frame(src)
    if main.height < q.height:  # an experiment: the per-category figures describe its categories part
        tbt = tbt.filter(pl.col(load.ROLE) == index.CATEGORIES)
    tbt_pos, trends = analysis.tbt_by_position(tbt)
    metrics, absent = analysis.category_metrics(main, tbt)
    elsewhere = analysis.recorded_elsewhere(absent, q, tbt_all) if main.height < q.height else []
    absent = [a for a in absent if a not in elsewhere]
    val_rows, flagged = analysis.validation(src.records)
    slo = slo or verdict.DEFAULT_SLO
    data = figures.Data(q=main, s=s, tbt=tbt, tbt_pos=tbt_pos, kind=src.kind, every=q,
                        pair_categories=pair_categories(src))
    model = src.manifest.get("model") or {}
    return {
        "src": src, "title": f"edgebench {src.kind} {src.name}", "manifest": src.manifest, "model": model,
        "facts": analysis.facts(src.manifest, analysis.clocks(s)), "failures": analysis.failures(q) if q.height else [],
        "metrics": metrics, "absent_metrics": absent, "absent_in_part": elsewhere, "figures": figures.all_figures(data),
        "repetitions": analysis.repetition_spread(q), "validation_rows": val_rows, "flagged": flagged,
        "trends": trends, "kv": analysis.kv_cache(model, [r for r in src.records if r.get(F.STATUS) == "ok"]),
        "roofline": analysis.roofline(main, src.manifest, bandwidth_gbs),
        "warmups": q_all.height - q.height, "queries": querypages.summary(src),
        "has_energy": any(m["key"] in (F.ENERGY_J, F.ENERGY_PER_TOKEN_J) for m in metrics),
        "has_throttle": F.THROTTLED in q.columns and not q[F.THROTTLED].drop_nulls().is_empty(),
        "main_is_part": main.height < q.height,
        "slo": slo, "slo_text": verdict.slo_text(slo), "verdicts": answer(src, slo),
        "engine_rows": analysis.engines_part(q, tbt_all), "engine_parts": engine_parts(src),
    }


def render(path: Path, bandwidth_gbs: float | None = None, slo: dict | None = None) -> Path:
    """report.html, summary.json (+ queries-N.html, queries.csv, queries.parquet) in the run or experiment folder."""
    src = load.load(path)
    ctx = context(src, bandwidth_gbs, slo)
    querypages.write(src, env(), ctx["title"], src.dir)  # first: the report's links never dangle
    html = env().get_template("report.html").render(**ctx)
    out = src.dir / REPORT
    atomic_write(out, html.encode("utf-8"))
    write_summary(src, ctx)
    export.write(src, src.dir)
    return out


def write_summary(src: load.Source, ctx: dict) -> Path:
    """summary.json: the page's per-category answer for scripts, the same numbers to the digit."""
    source = {"kind": src.kind, "name": src.name, "dir": src.dir.name,
              "categories_from": "the categories part" if ctx["main_is_part"] else "every measured attempt"}
    data = verdict.summary_json(ctx["verdicts"], ctx["slo"], source)
    out = src.dir / verdict.SUMMARY
    atomic_write(out, (json.dumps(data, indent=2, allow_nan=False) + "\n").encode("utf-8"))
    return out
