"""`edgebench report --merge RUN_DIR...`: one page across boards, such as a fleet's runs collected into
reports/fleet/<host>/<run>/ (`edgebench fleet collect`). A row per board and power mode, the study's
per-category figures faceted by board, the verdict per board against one budget, and the boards'
manifests side by side.

Boards differ on purpose (device, power mode, binary: that is what a fleet compares); runs of
different models or workloads measure different things, so they are refused unless forced, with
the refusal `report --compare` gives."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from orchestrator import fields as F
from orchestrator.errors import UserError
from orchestrator.experiments import index
from orchestrator.fleet import FLEET_FOLDER
from orchestrator.fsutil import atomic_write
from orchestrator.report import analysis, figures, load, verdict
from orchestrator.report.compare import MODEL, WORKLOAD, differing, not_comparable
from orchestrator.report.render import answer, env

MERGED_HTML = "merged.html"
# What every merged run must share: the figures are compared across boards, not across models.
SAME = [MODEL, WORKLOAD]
BOARD = "board"
# The manifest facts (analysis.facts' labels) the boards' table shows.
FACTS = ("device", "L4T / CUDA", "power mode", "binary", "model")


def host_of(src: load.Source) -> str:
    """The inventory's name for a collected run (reports/fleet/<host>/<run>), else the board's hostname."""
    if src.dir.resolve().parent.parent.name == FLEET_FOLDER:
        return src.dir.resolve().parent.name
    return str((src.manifest.get("platform") or {}).get("hostname") or src.dir.name)


def boards(srcs: list[load.Source]) -> list[dict]:
    """One row per run: its board label (host and power mode; the run's name where two would read alike)."""
    rows = []
    for s in srcs:
        p = s.manifest.get("platform") or {}
        mode = load.board_setting(s.manifest, "nvpmodel")
        rows.append({"src": s, "host": host_of(s), "device": p.get("jetson_model") or p.get("cpu_model"),
                     "mode": mode, "label": host_of(s) + (f" · {mode}" if mode else "")})
    seen = [r["label"] for r in rows]
    for r in rows:
        if seen.count(r["label"]) > 1:
            r["label"] += f" · {r['src'].name}"
    return rows


def _frames(row: dict) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The run's measured attempts of the per-category statistics and their token gaps, with its board."""
    src = row["src"]
    q = load.measured(load.queries_frame(src))
    main = analysis.main_part(q)
    tbt = load.tbt_frame(src)
    if main.height < q.height:  # an experiment: its categories part, as its own page has it
        tbt = tbt.filter(pl.col(load.ROLE) == index.CATEGORIES)
    label = pl.lit(row["label"], dtype=pl.Utf8).alias(BOARD)
    return main.with_columns(label), tbt.with_columns(label)


def _figures(rows: list[dict]) -> list[figures.Figure]:
    frames = [_frames(r) for r in rows]
    q = pl.concat([f[0] for f in frames], how="diagonal_relaxed")
    tbt = pl.concat([f[1] for f in frames], how="diagonal_relaxed")
    order = [r["label"] for r in rows]
    ok = q.filter(pl.col(F.STATUS) == "ok")
    ttft = figures.Figure("merge-ttft", "Time to first token per category, by board",
                          "TTFT (prompt echo to first token) of every successful measured query; one panel per "
                          "board, boxes span the middle half, whiskers 1.5 IQR.")
    if F.TTFT_S in ok.columns and not ok[F.TTFT_S].drop_nulls().is_empty():
        ttft.svg = figures.faceted_box(ok, F.TTFT_S, "TTFT (ms)", 1e3, BOARD, order)
    else:
        ttft.absent = "no board's run produced a first token"
    tbt_fig = figures.Figure("merge-tbt", "Time between tokens per category, by board",
                             "Every gap between two generated tokens, pooled per category; one panel per board.")
    if tbt.is_empty():
        tbt_fig.absent = "no board's run produced two tokens, so there is no gap between tokens to show"
    else:
        tbt_fig.svg = figures.faceted_box(tbt, F.TBT_S, "TBT (ms)", 1e3, BOARD, order)
    return [ttft, tbt_fig]


def merge(dirs: list[Path], force: bool = False, slo: dict | None = None,
          out: Path | None = None) -> tuple[Path, list[tuple[str, str, object, object]]]:
    """Write merged.html in the folder the runs share (reports/fleet/ for a fleet's); returns it and the
    differences --force let through, as (run, field, value in the first run, value in that run)."""
    if len(dirs) < 2:
        raise UserError("--merge needs two run folders or more", fix="edgebench report --merge reports/fleet/*/*")
    srcs = [load.load(d) for d in dirs]
    forced = []
    for s in srcs[1:]:
        diff = differing(srcs[0].manifest, s.manifest, SAME)
        if diff and not force:
            raise not_comparable(srcs[0].name, s.name, diff,
                                 "edgebench report --merge RUN_DIR... --force to merge them anyway")
        forced += [(s.name, *d) for d in diff]
    slo = slo or verdict.DEFAULT_SLO
    rows = boards(srcs)
    for r in rows:
        r["verdicts"] = answer(r["src"], slo)
        r["passed"] = sum(v["verdict"] == "pass" for v in r["verdicts"])
        r["facts"] = dict(analysis.facts(r["src"].manifest))
        r["n"] = sum(v["n"] for v in r["verdicts"])
        r["failures"] = sum(v["failures"] for v in r["verdicts"])
    out = Path(out) if out else Path(os.path.commonpath([Path(d).resolve().parent for d in dirs])) / MERGED_HTML
    synthetic = any((s.manifest.get("model") or {}).get("synthetic") for s in srcs)
    html = env().get_template("merge.html").render(rows=rows, figures=_figures(rows), facts=FACTS, forced=forced,
                                                   slo_text=verdict.slo_text(slo), first=srcs[0].name,
                                                   synthetic=synthetic)
    atomic_write(out, html.encode("utf-8"))
    return out, forced
