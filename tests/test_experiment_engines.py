"""`edgebench experiment engines`: the categories plan answered by a33e6a0's `main` and by its
resident `server`, both real, on the tiny twin; the page's "what a resident model saves" table
and `report --compare` of the two parts, each checked against the medians of the records the
two engines wrote."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from waiting import HANG_S

from orchestrator import fields as F
from orchestrator.packaged import default_workload
from orchestrator.workloads.schema import CATEGORIES


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def edgebench(env: dict, *args) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "orchestrator", *args], env=env, capture_output=True, text=True,
                         timeout=HANG_S)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res


@pytest.fixture(scope="module")
def engines_experiment(tmp_path_factory, llama_bin_dir, tiny_model):
    """Two queries a category of the default workload, through both engines, rendered."""
    tmp = tmp_path_factory.mktemp("engines")
    seen, rows = {}, []
    for r in read_jsonl(default_workload()):
        seen[r["category"]] = seen.get(r["category"], 0) + 1
        if seen[r["category"]] <= 2:
            rows.append(r)
    wl = tmp / "small.jsonl"
    wl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAKE_", "EDGEBENCH_"))}
    env.update(EDGEBENCH_ROOT=str(tmp), EDGEBENCH_LOCK=str(tmp / "measure.lock"),
               EDGEBENCH_SYSROOT=str(tmp / "bare"))  # a bare machine: no GPU sampler
    (tmp / "bare").mkdir()
    edgebench(env, "experiment", "engines", "--binary", str(llama_bin_dir / "main"), "--model", str(tiny_model),
              "--workload", str(wl), "--reports-dir", str(tmp / "out"), "--threads", "1")
    exp = next(p for p in (tmp / "out").iterdir() if p.is_dir())
    edgebench(env, "report", str(exp))
    return env, exp


def cold_and_load(run: Path, category: str | None) -> tuple[float, float | None]:
    recs = [r for r in read_jsonl(run / "queries.jsonl")
            if r[F.STATUS] == "ok" and (category is None or r[F.CATEGORY] == category)]
    loads = [r[F.LOAD_S] for r in recs if r.get(F.LOAD_S) is not None]
    return statistics.median(r[F.COLD_TTFT_S] for r in recs), statistics.median(loads) if loads else None


def saved_rows(page: str, table_id: str) -> dict[str, list[str]]:
    table = re.search(rf'<table id="{table_id}">(.*?)</table>', page, re.S)
    assert table, f"no {table_id} table"
    return {m.group(1): re.findall(r"<td[^>]*>([^<]*)</td>", m.group(2))
            for m in re.finditer(r'<tr[^>]*data-category="([a-z-]+)">(.*?)</tr>', table.group(1), re.S)}


def test_each_part_ran_its_engine_and_every_query_is_ok(engines_experiment):
    _, exp = engines_experiment
    for part, program in (("main", "main"), ("server", "server")):
        manifest = json.loads((exp / part / "manifest.json").read_text())
        assert manifest["engine"]["name"] == part and Path(manifest["binary"]["path"]).name == program
        recs = read_jsonl(exp / part / "queries.jsonl")
        assert len(recs) == 2 * len(CATEGORIES)
        assert all(r[F.STATUS] == "ok" and r[F.ENGINE_NAME] == part for r in recs), [r.get(F.ERROR) for r in recs]
    server = json.loads((exp / "server" / "manifest.json").read_text())["engine"]
    assert server["server_load_s"] > 0


def test_the_page_shows_per_category_what_the_resident_model_saves(engines_experiment):
    _, exp = engines_experiment
    page = (exp / "report.html").read_text()
    rows = saved_rows(page, "load-saved")
    assert set(rows) == {*CATEGORIES, "all"}
    for cat in [*CATEGORIES, None]:
        cold_main, load_main = cold_and_load(exp / "main", cat)
        cold_server, load_server = cold_and_load(exp / "server", cat)
        cells = rows[cat or "all"]
        assert cells[1] == f"{load_main:,.3f}"  # main pays the load on every query
        assert load_server is None and cells[2] == "-"  # the server paid it once, not per query
        assert cells[3:6] == [f"{cold_main:,.3f}", f"{cold_server:,.3f}", f"{cold_main - cold_server:,.3f}"]
    assert "<b>main</b> (part main)" in page and "<b>server</b> (part server; the model loaded once" in page
    # the verdicts describe the main part alone (2 queries a category), not both engines pooled (4)
    answer = re.search(r'<table id="answer-table">(.*?)</table>', page, re.S).group(1)
    for cat in CATEGORIES:
        n = re.search(rf"<tr><td>{cat}</td><td[^>]*>[^<]*</td><td>(\d+)</td>", answer).group(1)
        assert n == "2", (cat, n)


def test_compare_of_the_two_parts_is_not_refused_and_says_they_differ_in_engine(engines_experiment):
    env, exp = engines_experiment
    res = edgebench(env, "report", "--compare", str(exp / "main"), str(exp / "server"))
    assert "warning" not in res.stderr
    page = (exp / "compare-main-vs-server.html").read_text()
    assert "These runs differ in engine: A ran <b>main</b>, B ran <b>server</b>" in page
    rows = saved_rows(page, "load-saved")
    cold_main, _ = cold_and_load(exp / "main", None)
    cold_server, _ = cold_and_load(exp / "server", None)
    assert rows["all"][5] == f"{cold_main - cold_server:,.3f}"


def test_the_server_part_renders_the_studys_figures(engines_experiment):
    env, exp = engines_experiment
    edgebench(env, "report", str(exp / "server"))
    page = (exp / "server" / "report.html").read_text()
    for fig_id in ("prompt-length", "memory-rss", "cpu-util", "ttft-box", "tbt-box", "total-vs-prompt",
                   "tbt-position"):
        block = re.search(rf'<figure id="fig-{fig_id}"[^>]*>(.*?)</figure>', page, re.S)
        assert block and "<img" in block.group(1), fig_id
    assert "model loaded once in" in page  # the facts name the engine and its one load
