"""The field tables of docs/ generated from the record vocabulary (orchestrator/fields.py):
docs/report-columns.md whole, and every block of docs/measurement.md between
`<!-- fields: TABLE/GROUP -->` and `<!-- /fields -->`.

    python -m orchestrator.fieldsdoc          rewrite both files in a checkout
    python -m orchestrator.fieldsdoc --check  exit 1 when they differ from the declarations
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from orchestrator import fields as F

_BLOCK = re.compile(r"(<!-- fields: (\w+)/([\w-]+) -->\n)(.*?)(<!-- /fields -->)", re.S)
_TABLES = {"record": F.RECORD, "reading": F.READING, "derived": F.DERIVED}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(fields: list[F.Field], with_writer: bool = True) -> str:
    head = "| field | type | unit | meaning |" + (" written by |" if with_writer else "")
    rule = "|---|---|---|---|" + ("---|" if with_writer else "")
    rows = [f"| `{f.name}` | {f.type} | {f.unit or '-'} | {_cell(f.meaning)} |"
            + (f" `{f.writer.split(' ')[0]}` |" if with_writer else "") for f in fields]
    return "\n".join([head, rule, *rows]) + "\n"


def group(table_name: str, group_name: str) -> list[F.Field]:
    fields = [f for f in _TABLES[table_name].values() if f.group == group_name]
    if not fields:
        raise ValueError(f"no {table_name} field is in group {group_name!r}")
    return fields


def measurement(text: str) -> str:
    """docs/measurement.md with every marked block regenerated."""
    return _BLOCK.sub(lambda m: m.group(1) + table(group(m.group(2), m.group(3))) + m.group(5), text)


def report_columns() -> str:
    lines = ["# Report columns", "",
             "<!-- generated from orchestrator/fields.py by `python -m orchestrator.fieldsdoc`: edit the declarations,",
             "not this file -->", "",
             "`edgebench report` writes `queries.csv` and `queries.parquet` beside `report.html`: one row per",
             "finished query attempt (warm-up attempts included, with `phase` = warmup). Units are in the names.",
             "Empty cells are figures the run did not record (a failed query, no GPU sampler).", "",
             "| column | type | meaning |", "|---|---|---|"]
    lines += [f"| `{f.name}` | {f.type} | {_cell(f.meaning)} |" for f in F.columns()]
    return "\n".join(lines) + "\n"


def docs_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "docs"


def expected() -> dict[Path, str]:
    d = docs_dir()
    return {d / "measurement.md": measurement((d / "measurement.md").read_text(encoding="utf-8")),
            d / "report-columns.md": report_columns()}


def main(argv: list[str]) -> int:
    stale = [p for p, text in expected().items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
    if "--check" in argv:
        for p in stale:
            print(f"{p} is out of date with orchestrator/fields.py: run python -m orchestrator.fieldsdoc")
        return 1 if stale else 0
    for p, text in expected().items():
        p.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
