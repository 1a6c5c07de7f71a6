"""One grammar for the command line: `--reports-dir` on every command that takes the reports
folder (the old `--out`/`--dir` still work, hidden, with one warning), `--format` on what prints a
table, defaults read from RunConfig, and a resume refused the same way by run and experiment.
tests/fakemain.py stands in for `main`, so these run in seconds."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner
from fakemain import FakeMain, fake_binary, write_vocab_model

from orchestrator import runconfig, runprint
from orchestrator.cli import main


@pytest.fixture
def inputs(tmp_path, monkeypatch):
    monkeypatch.setattr("orchestrator.engine.child.run_child", FakeMain())
    wl = tmp_path / "w.jsonl"
    wl.write_text("".join(json.dumps({"id": f"q{i}", "category": cat, "prompt": f"hello {i}", "max_tokens": 4,
                                      "prompt_tokens_est": 3}) + "\n"
                          for i, cat in enumerate(["simple", "simple", "conversational"])))
    return ["--binary", str(fake_binary(tmp_path / "main")), "--model", str(write_vocab_model(tmp_path / "v.gguf")),
            "--workload", str(wl)]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def folders(d):
    return sorted(p for p in d.iterdir() if p.is_dir()) if d.exists() else []


def test_the_old_out_still_works_with_one_warning_and_is_hidden(tmp_path, inputs):
    res = invoke("run", *inputs, "--out", tmp_path / "old", "--category", "simple")
    assert res.exit_code == 0, res.output
    assert res.stderr.count("warning: --out is now --reports-dir") == 1
    assert len(folders(tmp_path / "old")) == 1
    new = invoke("run", *inputs, "--reports-dir", tmp_path / "new")
    assert new.exit_code == 0 and "warning" not in new.stderr and len(folders(tmp_path / "new")) == 1
    helptext = invoke("run", "--help").output
    assert "--reports-dir" in helptext and "--out" not in helptext


def test_the_old_and_the_new_spelling_together_are_a_usage_error(tmp_path, inputs):
    res = invoke("run", *inputs, "--out", tmp_path / "a", "--reports-dir", tmp_path / "b")
    assert res.exit_code == 2 and "--out is the old spelling of --reports-dir" in res.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_help_shows_the_defaults_runconfig_owns():
    helptext = " ".join(invoke("run", "--help").output.split())
    for option, field in [("--interval", "interval_s"), ("--idle-window", "idle_window_s"),
                          ("--timeout", "timeout_s"), ("--idle-timeout", "idle_timeout_s")]:
        assert f"[default: {runconfig.default(field)}]" in helptext.split(option, 1)[1].split("--", 1)[0], option


def test_a_left_out_option_takes_runconfigs_default(tmp_path, inputs):
    assert invoke("run", *inputs, "--reports-dir", tmp_path / "o").exit_code == 0
    (run,) = folders(tmp_path / "o")
    config = json.loads((run / "manifest.json").read_text())["config"]
    assert config["interval_s"] == runconfig.default("interval_s") and config["seed"] == runconfig.default("seed")
    assert config["threads"] == runconfig.default("threads") and config["memory_check"] is True


def test_run_format_json_prints_one_object_and_progress_goes_to_stderr(tmp_path, inputs):
    res = invoke("run", *inputs, "--reports-dir", tmp_path / "o", "--format", "json", "--category", "simple")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    (run,) = folders(tmp_path / "o")
    assert doc["run_dir"] == str(run) and doc["records"] == 2 and doc["failed"] == 0 and doc["exit_code"] == 0
    (simple,) = [c for c in doc["categories"] if c["category"] == "simple"]
    assert simple["n"] == 2 and simple["ttft_p50_s"] > 0
    assert "[2/2] q1" in res.stderr


def test_run_format_csv_and_md_print_the_category_rows(tmp_path, inputs):
    res = invoke("run", *inputs, "--reports-dir", tmp_path / "o", "--format", "csv", "--category", "simple")
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert list(rows[0]) == runprint.COLUMNS
    assert {r["category"]: r["n"] for r in rows}["simple"] == "2"
    md = invoke("run", *inputs, "--reports-dir", tmp_path / "m", "--format", "md").stdout.splitlines()
    assert md[0] == "| " + " | ".join(runprint.COLUMNS) + " |" and any(x.startswith("| simple | 2 |") for x in md)


def test_experiment_resume_refuses_what_would_change_the_run_as_run_does(tmp_path, inputs, monkeypatch):
    def interrupt_second(argv, n=[0]):  # noqa: B006 - a call counter
        n[0] += 1
        if n[0] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr("orchestrator.engine.child.run_child", FakeMain(interrupt_second))
    first = invoke("experiment", "output-sweep", *inputs, "--reports-dir", tmp_path / "o")
    assert first.exit_code == 130
    (run,) = folders(tmp_path / "o")
    assert f"finish it with edgebench experiment --resume {run}" in first.stderr
    before = (run / "queries.jsonl").read_text()
    for command in ("experiment", "run"):
        res = invoke(command, "--resume", run, "--threads", "2", "--workload", inputs[-1])
        assert res.exit_code == 1, res.output
        assert "--workload, --threads would change the run being resumed" in res.stderr
        assert f"fix: edgebench {command} --resume {run} alone" in res.stderr
    assert (run / "queries.jsonl").read_text() == before


def test_runs_list_formats_and_the_old_dir(tmp_path, inputs):
    assert invoke("run", *inputs, "--reports-dir", tmp_path / "o", "--category", "simple").exit_code == 0
    (run,) = folders(tmp_path / "o")
    doc = json.loads(invoke("runs", "list", "--reports-dir", tmp_path / "o", "--format", "json").stdout)
    assert doc["reports_dir"] == str(tmp_path / "o")
    assert [(r["folder"], r["status"], r["done"], r["total"]) for r in doc["runs"]] == [(run.name, "finished", 2, 2)]
    rows = list(csv.DictReader(io.StringIO(invoke("runs", "list", "--reports-dir", tmp_path / "o", "--format",
                                                  "csv").stdout)))
    assert rows[0]["folder"] == run.name and rows[0]["status"] == "finished"
    old = invoke("runs", "list", "--dir", tmp_path / "o")
    assert run.name in old.stdout and "warning: --dir is now --reports-dir" in old.stderr


def test_cron_subcommands_take_the_same_selectors(tmp_path, inputs, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_ROOT", str(tmp_path))
    tab = tmp_path / "cron.d" / "edgebench"
    for user, name in [("nano", "a"), ("ops", "b")]:
        res = invoke("cron", "install", "--schedule", "@daily", "--name", name, "--crontab-file", tab, "--user", user,
                     "--", "run", *inputs)
        assert res.exit_code == 0, res.output
    doc = json.loads(invoke("cron", "list", "--crontab-file", tab, "--user", "nano", "--format", "json").stdout)
    assert [(b["name"], b["user"], b["schedule"]) for b in doc["batches"]] == [("a", "nano", "@daily")]
    old = invoke("cron", "list", "--crontab-file", tab, "--system")
    assert "a: @daily as nano" in old.stdout and "b: @daily as ops" in old.stdout
    assert "warning: --system is now --user USER" in old.stderr
    assert invoke("cron", "remove", "--crontab-file", tab, "--user", "ops").exit_code == 0
    assert [x.split()[1] for x in tab.read_text().splitlines() if "edgebench" in x] == ["nano"]


def test_experiment_all_format_json_is_one_object_with_every_part(tmp_path, inputs):
    from test_experiments import rows

    study = tmp_path / "study.jsonl"
    study.write_text("".join(json.dumps(r) + "\n" for r in rows()))
    res = invoke("experiment", "all", *inputs, "--workload", study, "--reports-dir", tmp_path / "o", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    (exp,) = folders(tmp_path / "o")
    assert doc["experiment_dir"] == str(exp)
    assert [p["part"] for p in doc["parts"]] == ["categories", "granular", "prompt-sweep", "output-sweep",
                                                 "matched-pair"]
    assert all(p["run_dir"].startswith(str(exp)) and p["failed"] == 0 for p in doc["parts"])


def test_force_without_a_resume_is_a_usage_error_except_for_all(tmp_path, inputs):
    for command in (["run"], ["experiment", "granular"]):
        res = invoke(*command, *inputs, "--reports-dir", tmp_path / "o", "--force")
        assert res.exit_code == 2 and "--force only applies to --resume" in res.stderr, command
    assert not (tmp_path / "o").exists()
    plan = invoke("experiment", "all", *inputs, "--force", "--plan-only")
    assert plan.exit_code != 2, plan.output


def test_report_renders_every_run_under_reports_dir(tmp_path):
    from orchestrator.report import replay

    elsewhere = tmp_path / "elsewhere"
    run = replay.make_run(elsewhere / "20261120-100000-aaaa", per_category=1, granular_s=None)
    res = invoke("report", "--reports-dir", elsewhere, "--no-index")
    assert res.exit_code == 0, res.output
    assert f"report: {run / 'report.html'}" in res.stdout and (run / "report.html").is_file()
    empty = invoke("report", "--reports-dir", tmp_path / "none")
    assert empty.exit_code == 1 and f"no run folder under {tmp_path / 'none'}" in empty.stderr
