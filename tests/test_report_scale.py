"""The report at scale, without drawing a figure: readings parsed by polars a chunk at a time
read the same as the store's reader, and the per-query table goes to pages of its own."""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from orchestrator import fields as F
from orchestrator.errors import UserError
from orchestrator.report import load, querypages
from orchestrator.report.render import env
from orchestrator.store import RunReader

DATA = Path(__file__).parent / "data" / "runs"


def _by_dicts(run: Path) -> pl.DataFrame:
    """The readings as the report built them before: every dict from the store's RunReader."""
    reader = RunReader(run)
    rows = [s for s in reader.samples() if not s.get(F.DISCARD)]
    return load._scalar_columns(rows, table=F.READING)


def _same(a: pl.DataFrame, b: pl.DataFrame) -> None:
    assert sorted(a.columns) == sorted(b.columns)
    assert_frame_equal(a.select(sorted(a.columns)), b.select(sorted(a.columns)))


def test_streamed_readings_equal_the_store_readers_dicts(tmp_path, monkeypatch):
    for name in ("nano-gpu", "v1-twin-cpu"):
        run = tmp_path / name
        shutil.copytree(DATA / name, run)
        with open(run / "samples.jsonl", "a") as f:
            f.write(json.dumps({"query_id": "q", "attempt": "killed", "sampler": "process", "t_s": 0.1,
                                "rss_bytes": 999e9}) + "\n")  # readings of an attempt that has no record
            f.write(json.dumps({"query_id": "q", "attempt": RunReader(run).queries()[0][F.ATTEMPT],
                                "sampler": "process", "t_s": 9.0, "rss_bytes": 5, F.DISCARD: True}) + "\n")
            f.write('{"query_id": "q", "attempt": "a1", "sampler": "pro')  # an append in progress
        monkeypatch.setattr(load, "CHUNK_BYTES", 700)  # many chunks, a line split across two of them
        streamed = load.read_samples(run, {r[F.ATTEMPT] for r in RunReader(run).queries()})
        _same(_by_dicts(run), streamed)
        assert streamed.height > 5 and 5.0 not in streamed[F.RSS_BYTES].to_list()
        assert 999e9 not in streamed[F.RSS_BYTES].to_list()


def test_a_bad_complete_line_names_its_line_and_the_fix(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(DATA / "v1-twin-cpu", run)
    with open(run / "samples.jsonl", "a") as f:
        f.write("{not json\n")
    with pytest.raises(UserError, match=r"line 8, is not valid JSON") as e:
        load.load(run)
    assert "remove or correct line 8" in e.value.fix


def _cells(page: str) -> list[list[str]]:
    table = page[page.index('<table class="queries">'):]
    table = table[:table.index("</table>")]
    return [[html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
            for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)[1:]]


def _grown(tmp_path: Path, copies: int) -> Path:
    """The committed run with its attempts repeated `copies` times (new attempt names, same raw)."""
    run = tmp_path / "grown"
    shutil.copytree(DATA / "v1-twin-cpu", run)
    recs = RunReader(run).queries()
    with open(run / "queries.jsonl", "w") as f:
        for k in range(copies):
            for r in recs:
                f.write(json.dumps({**r, F.ATTEMPT: f"{r[F.ATTEMPT]}-{k}"}) + "\n")
    return run


def test_every_attempt_is_on_exactly_one_page_in_order_escaped_and_linked(tmp_path, monkeypatch):
    monkeypatch.setattr(querypages, "ROWS_PER_PAGE", 4)
    run = _grown(tmp_path, 3)  # 9 attempts: pages of 4, 4 and 1
    src = load.load(run)
    paths = querypages.write(src, env(), "edgebench run grown", run)
    assert [p.name for p in paths] == ["queries-1.html", "queries-2.html", "queries-3.html"]
    pages = [p.read_text() for p in paths]
    rows = [row for page in pages for row in _cells(page)]
    assert [r[0] for r in rows] == [str(i) for i in range(1, 10)]
    assert [r[1] for r in rows] == [r[F.QUERY_ID] for r in src.records]
    assert rows[0][-2] == "Capital of France? <script>alert('prompt')</script>"  # read from raw/, shown as text
    assert rows[2][-1] == "main was killed by SIGSEGV <b>bold</b>"
    for page in pages:
        assert "<script" not in page and "<b>bold" not in page
        assert '<a href="report.html">' in page
        assert all((run / ref).is_file() for ref in re.findall(r'href="(queries-\d+\.html)"', page))
    assert '<a href="queries-1.html">1</a>' in pages[1] and "<strong>2</strong>" in pages[1]

    monkeypatch.setattr(querypages, "ROWS_PER_PAGE", 500)
    assert [p.name for p in querypages.write(src, env(), "t", run)] == ["queries-1.html"]
    assert sorted(p.name for p in run.glob("queries-*.html")) == ["queries-1.html"]  # stale pages go


def test_the_report_keeps_only_failed_and_flagged_attempts_capped(tmp_path, monkeypatch):
    monkeypatch.setattr(querypages, "ROWS_PER_PAGE", 4)
    run = _grown(tmp_path, 3)  # per copy: one ok, one flagged by the timing check, one crashed
    src = load.load(run)
    summary = querypages.summary(src)
    assert summary["total"] == 9 and summary["notable"] == 6
    assert summary["pages"] == ["queries-1.html", "queries-2.html", "queries-3.html"]
    assert [(r["number"], r["page"]) for r in summary["rows"]] == [
        (2, "queries-1.html"), (3, "queries-1.html"), (5, "queries-2.html"), (6, "queries-2.html"),
        (8, "queries-2.html"), (9, "queries-3.html")]
    monkeypatch.setattr(querypages, "NOTABLE_MAX", 2)
    assert [r["number"] for r in querypages.summary(src)["rows"]] == [2, 3]
