"""The load folder's page and `edgebench load`'s refusals. The page is rendered from a folder the
real client wrote (against a socket that answers as a33e6a0's server: tests/test_load_math.py)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from test_load_math import measured_lines

from orchestrator.cli import main
from orchestrator.load import format as fmt
from orchestrator.load import point, profile


@pytest.mark.slow  # plotnine draws two figures: seconds
def test_the_page_escapes_model_output_and_says_why_energy_is_absent(tmp_path):
    pytest.importorskip("plotnine")
    p = profile.Point("constant", 4, rate=20.0)
    slo = {"ttft_s": 60.0, "tbt_s": 60.0}
    doc = {"points": [{**p.to_json(), "label": p.label}], "slo": slo, "slots": 1, "mix": "this mix (simple)"}
    measured_lines(tmp_path, p, tokens=["<scr", "ipt>", "x"], doc=doc)
    from orchestrator.report import loadpage

    page = loadpage.render(tmp_path / "load").read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "this board serves up to 20 requests/s of this mix (simple)" in page
    assert page.count('src="data:image/svg+xml;base64,') == 2 and loadpage.NO_ENERGY in page
    # another budget on report: the same requests judged again
    strict = loadpage.render(tmp_path / "load", {"ttft_s": 1e-9, "tbt_s": 60.0}).read_text()
    assert "does not serve this mix (simple)" in strict
    assert json.loads((tmp_path / "load" / fmt.LOAD_JSON).read_text())["slo"] == slo  # the folder is unchanged


@pytest.mark.parametrize(("args", "said"), [
    (["--engine", "main"], "'main' is not 'server'"),  # --help offers the server alone
    (["--rates", "1,2", "--sweep"], "give one of them"),
    (["--rates", "1,fast"], "'fast'"),
    (["--concurrency", "0"], "at least 1"),
])
def test_contradictory_or_bad_options_are_refused_before_anything_runs(tmp_path, args, said):
    res = CliRunner().invoke(main, ["load", "--out", str(tmp_path / "x"), *args])
    assert res.exit_code == 2 and said in res.output, res.output
    assert not (tmp_path / "x").exists()


def test_a_finished_sweep_is_not_resumed(tmp_path):
    folder = tmp_path / "done"
    fmt.create(folder, {"status": "complete", "points": []})
    res = CliRunner().invoke(main, ["load", "--resume", str(folder)])
    assert res.exit_code == 1 and "nothing to resume" in res.output and "edgebench report" in res.output


def test_the_knee_sentence_names_the_rate_and_the_budget():
    k = point.knee([{"rate": 0.5, "sustained": True}, {"rate": 1.0, "sustained": False}])
    s = point.sentence(k, {"ttft_s": 2.0, "tbt_s": 0.2}, "this mix")
    assert s.startswith("this board serves up to 0.5 requests/s of this mix within the budget (TTFT ≤ 2 s and "
                        "TBT p90 ≤ 200 ms")


def test_a_sweep_whose_model_changed_is_not_resumed(tmp_path):
    model, binary = tmp_path / "m.gguf", tmp_path / "server"
    model.write_bytes(b"GGUF one"), binary.write_bytes(b"#!")
    from orchestrator.net import sha256_file

    folder = tmp_path / "sweep"
    fmt.create(folder, {"status": "interrupted", "points": [], "binary": {"sha256": sha256_file(binary)},
                        "model": {"sha256": sha256_file(model)},
                        "config": {"binary": str(binary), "model": str(model), "workload": str(tmp_path / "w"),
                                   "out_dir": str(tmp_path), "engine": "server"}})
    model.write_bytes(b"GGUF two")
    res = CliRunner().invoke(main, ["load", "--resume", str(folder)])
    assert res.exit_code == 1 and f"the model {model} has changed" in res.output and "--out NEW_DIR" in res.output
