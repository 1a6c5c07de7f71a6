"""Per-query data beside the HTML, as CSV and Parquet, with a fixed, documented set of columns
(docs/report-columns.md is generated from the same declarations: orchestrator/fieldsdoc.py)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from orchestrator import fields as F
from orchestrator.fsutil import replacing
from orchestrator.store import QUERIES_CSV, QUERIES_PARQUET

# The columns, their types and meanings are declared in orchestrator/fields.py. Units are in the
# names; a column absent from a run is written empty.
COLUMNS = [(f.name, f.type, f.meaning) for f in F.columns()]
_TYPES = {"str": pl.Utf8, "int": pl.Int64, "float": pl.Float64, "bool": pl.Boolean}


def per_query(src) -> pl.DataFrame:
    from orchestrator.report.load import flat_record

    run_id = src.manifest.get("run_id")
    rows = []
    for r in src.records:
        flat = flat_record(r)
        flat.update({F.RUN_ID: r.get(F.RUN_ID) or run_id, F.OUTPUT_TEXT: r.get(F.OUTPUT_TEXT)})
        rows.append(flat)
    cols = {}
    for name, kind, _ in COLUMNS:
        values = [row.get(name) for row in rows]
        if kind == "int":
            values = [None if v is None else int(v) for v in values]
        elif kind == "float":
            values = [None if v is None else float(v) for v in values]
        elif kind == "str":
            values = [None if v is None else str(v) for v in values]
        elif kind == "bool":
            values = [None if v is None else bool(v) for v in values]
        cols[name] = pl.Series(name, values, dtype=_TYPES[kind])
    return pl.DataFrame(cols, height=len(rows))


def write(src, out_dir: Path) -> list[Path]:
    df = per_query(src)
    paths = [Path(out_dir) / QUERIES_CSV, Path(out_dir) / QUERIES_PARQUET]
    for path in paths:
        with replacing(path) as tmp:
            if path.suffix == ".csv":
                df.write_csv(tmp)
            else:
                df.write_parquet(tmp)
    return paths
