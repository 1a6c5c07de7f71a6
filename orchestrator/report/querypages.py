"""The per-query table in pages of its own beside report.html (queries-1.html, queries-2.html, ...).
Every attempt's prompt and output inline made a 10 000-query report 22 MB, slow to open through
an SSH tunnel from a board; report.html keeps only the attempts that need a look (failed or
flagged by the timing check) and links the pages, each at most ROWS_PER_PAGE rows."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import jinja2

from orchestrator import fields as F
from orchestrator.fsutil import atomic_write
from orchestrator.store import QUERY_PAGE, RAW, RAW_STREAM_INDEX

ROWS_PER_PAGE = 500
# The report's own table of failed and flagged attempts stops here; the pages hold the rest.
NOTABLE_MAX = 50
_PAGE = re.compile(re.escape(QUERY_PAGE).replace(re.escape("{}"), r"(\d+)"))


def page_name(number: int) -> str:
    return QUERY_PAGE.format(number)


def page_names(n_records: int) -> list[str]:
    return [page_name(i + 1) for i in range(-(-n_records // ROWS_PER_PAGE))]


def prompt_of(src, record: dict) -> str | None:
    """The prompt as main received it: the record's own, else the argv kept in raw/<query>/stream.json
    (so a copied folder shows prompts without the workload file)."""
    if record.get("prompt") is not None:
        return record["prompt"]
    raw = record.get(F.RAW_DIR)
    if not raw:
        return None
    try:
        # os.path and bytes rather than pathlib and text: a 10 000-query run opens 10 000 of these
        with open(os.path.join(src.run_dir_of(record), RAW, raw, RAW_STREAM_INDEX), "rb") as fh:
            argv = json.loads(fh.read())["argv"]
        return argv[argv.index("-p") + 1]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


def _row(src, record: dict, number: int) -> dict:
    """One table row: the record, its prompt, its number in the folder and the page that holds it."""
    return {**record, "prompt": prompt_of(src, record), "number": number,
            "page": page_name((number - 1) // ROWS_PER_PAGE + 1)}


def _notable(record: dict) -> bool:
    val = record.get(F.VALIDATION)
    return record.get(F.STATUS) != "ok" or (isinstance(val, dict) and not val.get("ok"))


def summary(src) -> dict:
    """What report.html shows of the attempts: the first NOTABLE_MAX failed or flagged ones
    (warm-ups included: a crash is a crash), how many there are, and the pages' names."""
    notable = [(i, r) for i, r in enumerate(src.records, 1) if _notable(r)]
    return {"rows": [_row(src, r, i) for i, r in notable[:NOTABLE_MAX]], "notable": len(notable),
            "total": len(src.records), "pages": page_names(len(src.records)), "per_page": ROWS_PER_PAGE}


def write(src, env: jinja2.Environment, title: str, out_dir: Path) -> list[Path]:
    """Every attempt in order, ROWS_PER_PAGE to a page, one page in memory at a time; pages left
    from an earlier render of a folder that had more attempts are removed."""
    names = page_names(len(src.records))
    template = env.get_template("queries.html")
    paths = []
    for k, name in enumerate(names):
        first = k * ROWS_PER_PAGE
        rows = [_row(src, r, first + i) for i, r in enumerate(src.records[first:first + ROWS_PER_PAGE], 1)]
        html = template.render(title=title, rows=rows, pages=names, current=name, first=first + 1,
                               last=first + len(rows), total=len(src.records))
        path = Path(out_dir) / name
        atomic_write(path, html.encode("utf-8"))
        paths.append(path)
    for old in Path(out_dir).iterdir():
        m = _PAGE.fullmatch(old.name)
        if m and int(m.group(1)) > len(names):
            old.unlink()
    return paths
