"""`edgebench report --merge RUN_DIR...` on run folders the real session wrote (report/replay.py's Nano),
laid out as `fleet collect` lays them out (reports/fleet/<host>/<run>): a row per board, the verdict per
board from the statistics engine, the boards' manifests; runs of another model or workload refused
unless --force, naming the field, as --compare refuses them."""

from __future__ import annotations

import html
import json
import shutil

import pytest
from click.testing import CliRunner

from orchestrator import stats
from orchestrator.cli import main
from orchestrator.report import replay
from orchestrator.summary import ms
from orchestrator.workloads.schema import CATEGORIES


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory):
    """Two boards' runs of the same workload (seeds differ: their figures do), and a third board in
    another power mode, as `fleet collect` lays them out."""
    fleet = tmp_path_factory.mktemp("reports") / "fleet"
    a = replay.make_run(fleet / "nano-1" / "20261201-010000-aaaa", per_category=2, categories=("simple", "complex"),
                        granular_s=None, seed=1)
    b = replay.make_run(fleet / "nano-2" / "20261201-010000-bbbb", per_category=2, categories=("simple", "complex"),
                        granular_s=None, seed=2)
    c = fleet / "nano-3" / "20261201-010000-cccc"
    shutil.copytree(b, c)
    edit(c, lambda m: (m["board"]["start"].update(nvpmodel={"mode": "5W", "id": 1}), m.update(run_id=c.name)))
    return fleet, [a, b, c]


def edit(run, change) -> None:
    m = json.loads((run / "manifest.json").read_text())
    change(m)
    (run / "manifest.json").write_text(json.dumps(m))


def records(run) -> list[dict]:
    return [json.loads(x) for x in (run / "queries.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(("field", "change"), [
    ("model", lambda m: m["model"].update(sha256="f" * 64)),
    ("workload", lambda m: m["workload"].update(sha256="e" * 64)),
])
def test_runs_of_another_model_or_workload_are_refused_naming_the_field_unless_forced(tmp_path, field, change):
    a = replay.make_run(tmp_path / "fleet" / "b1" / "run-a", per_category=1, categories=("simple",), granular_s=None)
    b = tmp_path / "fleet" / "b2" / "run-b"
    shutil.copytree(a, b)
    edit(b, change)
    res = CliRunner().invoke(main, ["report", "--merge", str(a), str(b)])
    assert res.exit_code == 1
    assert f"differ in {field} (" in res.output and "so their figures are not comparable" in res.output
    assert "fix: edgebench report --merge RUN_DIR... --force" in res.output
    assert not (tmp_path / "fleet" / "merged.html").exists()


def test_merge_needs_two_runs(tmp_path):
    a = replay.make_run(tmp_path / "one", per_category=1, categories=("simple",), granular_s=None)
    res = CliRunner().invoke(main, ["report", "--merge", str(a)])
    assert res.exit_code == 1 and "--merge needs two run folders or more" in res.output


@pytest.mark.slow  # renders plotnine figures
def test_one_page_has_a_row_and_a_verdict_per_board_and_their_manifests(fleet_dir):
    fleet, runs = fleet_dir
    res = CliRunner().invoke(main, ["report", "--merge", *map(str, runs)])
    assert res.exit_code == 0, res.output
    assert res.output.strip() == f"merged: {fleet / 'merged.html'}"
    page = (fleet / "merged.html").read_text()
    labels = ["nano-1 · MAXN", "nano-2 · MAXN", "nano-3 · 5W"]
    for label, run in zip(labels, runs, strict=True):
        row = page.split(f'<tr data-board="{label}"><td>{label}</td>', 1)[1].split("</tr>", 1)[0]
        assert f"<td>{replay.NANO_MODEL}</td>" in row and f"<td>{run.name}</td>" in row
        # the verdict per board: the statistics engine's figures of that board's own records
        by_cat = {r["category"]: r for r in stats.by_category(records(run), CATEGORIES)}
        for cat in ("simple", "complex"):
            cells = page.split(f'<tr data-board="{label}" data-category="{cat}">', 1)[1].split("</tr>", 1)[0]
            assert f"<td>{ms(by_cat[cat]['ttft']['p90'])}</td>" in cells
    # the manifests' table: device, L4T, power mode, binary, model per board
    table = page.split('id="manifests-table"', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr data-board=") == 3 and "5W" in table and "32.7.1" in table
    assert html.escape("TinyLlama-1.1B-Chat-v1.0 (replayed vocabulary, no weights)") in table
    assert page.count('class="present"') == 2  # TTFT and TBT faceted by board
