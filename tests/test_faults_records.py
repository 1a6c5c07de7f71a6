"""Damaged and hostile run folders (issue 18, items 4, 5, 6): a record line with a missing key,
wrong types or a JSON array; a deleted queries.jsonl; one damaged folder beside healthy ones; a
symlinked folder under `runs prune`; a read-only project folder. Each gives one message naming
the fix and a meaningful exit code, never a traceback, and nothing recorded is lost."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakemain import FakeMain, fake_binary, write_vocab_model

from orchestrator.cli import main
from orchestrator.config import RunConfig
from orchestrator.session import Session

GOLDEN = Path(__file__).parent / "data" / "runs" / "v1-twin-cpu"


def invoke(*args, env=None):
    res = CliRunner().invoke(main, [str(a) for a in args], env=env)
    # a traceback would show as an exception other than the SystemExit click ends with
    assert res.exception is None or isinstance(res.exception, SystemExit), res.output
    assert "Traceback" not in res.output
    return res


@pytest.fixture
def no_signal_handlers(monkeypatch):
    monkeypatch.setattr(signal, "signal", lambda *a: None)  # `run` installs handlers that would outlive it here


@pytest.fixture
def interrupted_run(tmp_path, monkeypatch, no_signal_handlers):
    """A run folder of 3 queries written by the real session (fake `main` at the executor seam),
    stopped after the first was recorded; the fake is what a resume would call."""
    model = write_vocab_model(tmp_path / "vocab.gguf")
    wl = tmp_path / "w.jsonl"
    wl.write_text("".join(json.dumps({"id": f"q{i}", "category": "simple", "prompt": f"question {i}",
                                      "max_tokens": 4, "prompt_tokens_est": 4}) + "\n" for i in range(3)))
    cfg = RunConfig(binary=fake_binary(tmp_path / "main"), model=model, workload=wl, out_dir=tmp_path / "out")

    def stop_second(argv, n=[0]):  # noqa: B006 - a call counter
        n[0] += 1
        if n[0] == 2:
            raise KeyboardInterrupt

    s = Session.create(cfg, executor=FakeMain(stop_second), log=lambda m: None)
    with pytest.raises(KeyboardInterrupt):
        s.run()
    fake = FakeMain()
    monkeypatch.setattr("orchestrator.engine.child.run_child", fake)
    return s.store.dir, fake


def manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())


BAD_LINES = {
    "no attempt": ({"query_id": "q0", "category": "simple", "status": "ok"}, "it has no 'attempt'"),
    "array": (["q0", "simple", "ok"], "it is a JSON array, not an object"),
    "scalar": (42, "it is a JSON number, not an object"),
    "id a number": ({"query_id": 7, "attempt": "a", "category": "simple", "status": "ok"},
                    "its 'query_id' is a JSON number, not a string"),
    "llama a string": ({"query_id": "q0", "attempt": "a", "category": "simple", "status": "ok",
                        "llama": "fast"}, "its 'llama' is a JSON string, not an object"),
    "repetition a string": ({"query_id": "q0", "attempt": "a", "category": "simple", "status": "ok",
                             "repetition": "first"}, "its 'repetition' is a JSON string, not a number"),
    "tbt of strings": ({"query_id": "q0", "attempt": "a", "category": "simple", "status": "ok",
                        "tbt_s": ["fast"]}, "its 'tbt_s' is not an array of numbers (it holds a JSON string)"),
}


@pytest.mark.parametrize("case", BAD_LINES)
def test_a_bad_record_is_refused_by_resume_before_any_query_runs(interrupted_run, case):
    run, fake = interrupted_run
    bad, what = BAD_LINES[case]
    queries = run / "queries.jsonl"
    queries.write_text(json.dumps(bad) + "\n")
    before = queries.read_bytes()
    res = invoke("run", "--resume", run)
    assert res.exit_code == 1, res.output
    assert f"{queries}, line 1, is not a valid query record: {what}" in res.output
    assert "fix: remove or correct line 1 by hand" in res.output
    assert fake.calls == []  # refused before the first query
    assert manifest(run)["status"] == "interrupted"  # not `finished` over a folder nothing can read
    assert queries.read_bytes() == before


def test_a_bad_record_gives_one_message_from_report_and_runs_list(interrupted_run):
    run, _ = interrupted_run
    (run / "queries.jsonl").write_text(json.dumps(["not", "a", "record"]) + "\n")
    rep = invoke("report", "--no-index", run)
    assert rep.exit_code == 1 and "line 1, is not a valid query record: it is a JSON array" in rep.output
    listed = invoke("runs", "list", "--reports-dir", run.parent)
    assert listed.exit_code == 0
    assert f"warning: left out, cannot be read: {run.name}: " in listed.output and "line 1" in listed.output


def test_a_bad_sample_line_names_its_line(interrupted_run):
    run, _ = interrupted_run
    with open(run / "samples.jsonl", "a") as f:
        f.write(json.dumps([1, 2]) + "\n")
    n = (run / "samples.jsonl").read_text().count("\n")
    rep = invoke("report", "--no-index", run)
    assert rep.exit_code == 1
    assert f"samples.jsonl, line {n}, is not a valid sample: it is a JSON array, not an object" in rep.output


def test_a_deleted_queries_file_beside_measured_raw_data_is_refused_on_resume(interrupted_run):
    run, fake = interrupted_run
    assert any((run / "raw").iterdir())
    (run / "queries.jsonl").unlink()
    res = invoke("run", "--resume", run)
    assert res.exit_code == 1, res.output
    assert "queries.jsonl is missing, but" in res.output and "resuming would measure every query again" in res.output
    assert "fix: restore queries.jsonl from a backup" in res.output
    assert fake.calls == [] and not (run / "queries.jsonl").exists()


def test_a_resume_of_a_good_folder_still_runs_the_rest(interrupted_run):
    run, fake = interrupted_run
    res = invoke("run", "--resume", run)
    assert res.exit_code == 0, res.output
    assert len(fake.calls) == 2 and manifest(run)["status"] == "finished"


def golden_copy(dest: Path) -> Path:
    shutil.copytree(GOLDEN, dest)
    return dest


@pytest.mark.parametrize("damage", ["record without attempt", "unparseable manifest", "manifest of another shape"])
def test_one_damaged_sibling_is_listed_unreadable_and_the_healthy_run_reports(tmp_path, damage):
    reports = tmp_path / "reports"
    healthy = golden_copy(reports / "20260101-000000-aaaa")
    broken = golden_copy(reports / "20260102-000000-bbbb")
    if damage == "record without attempt":
        lines = (broken / "queries.jsonl").read_text().splitlines()
        first = json.loads(lines[0])
        del first["attempt"]
        (broken / "queries.jsonl").write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
        reason = "line 1, is not a valid query record: it has no &#39;attempt&#39;"
    elif damage == "unparseable manifest":
        (broken / "manifest.json").write_text('{"schema_version": 2, "run_id": ')
        reason = "manifest.json is not valid JSON"
    else:
        m = json.loads((broken / "manifest.json").read_text())
        (broken / "manifest.json").write_text(json.dumps({**m, "platform": "x86_64", "model": ["tiny"]}))
        reason = "its manifest or records are not in the shape edgebench writes"
    res = invoke("report", healthy)
    assert res.exit_code == 0, res.output
    assert (healthy / "report.html").is_file()
    assert f"warning: left out of the index: {broken.name}: " in res.output
    page = (reports / "index.html").read_text()
    assert healthy.name in page
    assert f"Could not read {broken.name}: " in page and reason in page


def old_runs(reports: Path, n: int) -> list[Path]:
    return [golden_copy(reports / f"2026010{i}-000000-000{i}") for i in range(1, n + 1)]


def test_prune_checks_every_folder_first_and_never_deletes_through_a_symlink(tmp_path):
    reports = tmp_path / "reports"
    first, second, third = old_runs(reports, 3)
    elsewhere = golden_copy(tmp_path / "kept-elsewhere")
    # the link sorts between the two runs, as the one that stopped prune half-way did
    link = reports / "20260101-500000-link"
    link.symlink_to(elsewhere)
    res = invoke("runs", "prune", "--keep", "0", "--reports-dir", reports)
    assert res.exit_code == 0, res.output
    assert not first.exists() and not second.exists() and not third.exists()
    assert link.is_symlink() and (elsewhere / "queries.jsonl").is_file()  # neither the link nor its run touched
    assert f"kept {link.name}: it is a symbolic link to {elsewhere}" in res.output and f"rm {link}" in res.output
    assert "deleted 3 runs" in res.output


@pytest.fixture
def read_only(tmp_path):
    """A folder this user cannot write: a read-only tmpfs as root (CI), permission bits otherwise."""
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() == 0:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(ro)], capture_output=True,
                                 text=True)
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (root is not stopped by permission bits): {mounted.stderr}")

        def seal():
            subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)

        yield ro, seal
        subprocess.run(["umount", "-l", str(ro)], check=False)
    else:
        yield ro, lambda: [p.chmod(0o555) for p in [ro, *ro.rglob("*")] if p.is_dir()]
        for p in [ro, *ro.rglob("*")]:
            if p.is_dir():
                p.chmod(0o755)


def test_a_read_only_project_folder_is_named_by_run_report_and_doctor(tmp_path, read_only, no_signal_handlers):
    ro, seal = read_only
    run = golden_copy(ro / "reports" / "20260101-000000-aaaa")
    (ro / "workloads").mkdir()
    seal()
    env = {"EDGEBENCH_ROOT": str(ro)}
    model = write_vocab_model(tmp_path / "vocab.gguf")
    wl = tmp_path / "w.jsonl"
    wl.write_text(json.dumps({"id": "q0", "category": "simple", "prompt": "hi", "max_tokens": 2,
                              "prompt_tokens_est": 2}) + "\n")
    res = invoke("run", "--binary", fake_binary(tmp_path / "main"), "--model", model, "--workload", wl, env=env)
    assert res.exit_code == 1, res.output
    assert f"cannot write into {ro / 'reports'}" in res.output or f"cannot write into {ro}" in res.output
    assert "fix: --reports-dir DIR on a writable disk" in res.output

    rep = invoke("report", run, env=env)
    assert rep.exit_code == 1 and f"cannot write the report into {run}" in rep.output
    assert "fix: copy the run folder to a writable disk" in rep.output

    doc = invoke("doctor", env=env)
    assert doc.exit_code == 1
    assert f"{ro / 'reports'} is not writable" in doc.output and "edgebench run --reports-dir DIR" in doc.output


def test_experiment_all_on_a_read_only_folder_is_one_message(tmp_path, read_only, no_signal_handlers):
    """`experiment all` creates its own folder: a read-only reports folder is refused with the
    same message and fix as `run`, not a traceback."""
    ro, seal = read_only
    seal()
    model = write_vocab_model(tmp_path / "vocab.gguf")
    res = invoke("experiment", "all", "--reports-dir", ro / "reports", "--binary", fake_binary(tmp_path / "main"),
                 "--model", model)
    assert res.exit_code == 1, res.output
    assert f"cannot write into {ro}" in res.output and "fix: --reports-dir DIR on a writable disk" in res.output
    assert "Traceback" not in res.output
