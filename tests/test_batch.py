"""`edgebench batch` as cron runs it, with `main` a shell script (every query fails fast: it
writes no YAML) or one that hangs on a chosen prompt: resume of its own unfinished run after
SIGKILL, --fresh, SIGTERM, two batches at once, a changed model, a full disk, the summary."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from fakemain import FakeMain, write_vocab_model
from test_run_cli import wait_for
from waiting import HANG_S


class Board:
    """A project root with a workload of 3 queries, a vocabulary model and a scripted `main`
    that hangs on "hello 1" while <root>/hang exists."""

    def __init__(self, root: Path):
        self.root = root
        self.env = dict(os.environ, EDGEBENCH_ROOT=str(root), EDGEBENCH_LOCK=str(root / "measure.lock"))
        self.model = write_vocab_model(root / "vocab.gguf")
        self.workload = root / "w.jsonl"
        self.workload.write_text("".join(json.dumps({"id": f"q{i}", "category": "simple", "prompt": f"hello {i}",
                                                     "max_tokens": 4, "prompt_tokens_est": 3}) + "\n"
                                         for i in range(3)))
        self.hang, self.pidfile = root / "hang", root / "main.pid"
        self.main = root / "main"
        self.main.write_text(f"""#!/bin/sh
while [ "$1" != "-p" ]; do shift; done
if [ "$2" = "hello 1" ] && [ -f {self.hang} ]; then echo $$ > {self.pidfile}; exec sleep 60; fi
exit 0
""")
        self.main.chmod(0o755)
        self.reports = root / "reports"
        self.log = self.reports / "cron" / "nightly.log"

    def args(self, *extra: str, run: tuple[str, ...] = ()) -> list[str]:
        return ["batch", "--name", "nightly", *extra, "--", "run", "--binary", str(self.main), "--model",
                str(self.model), "--workload", str(self.workload), *run]

    def run(self, *extra: str, run: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "orchestrator", *self.args(*extra, run=run)], env=self.env,
                              capture_output=True, text=True, timeout=HANG_S)

    def start_hanging(self) -> subprocess.Popen:
        self.hang.touch()
        self.pidfile.unlink(missing_ok=True)
        proc = subprocess.Popen([sys.executable, "-m", "orchestrator", *self.args()], env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert wait_for(lambda: self.pidfile.exists() and self.pidfile.read_text().strip()), "main never hung"
        return proc

    def leave_unfinished(self) -> None:
        """A batch killed by SIGKILL in its second query (and its main with it)."""
        proc = self.start_hanging()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kill_main(self)
        self.hang.unlink()

    def runs(self) -> list[Path]:
        return sorted(p for p in self.reports.iterdir() if (p / "manifest.json").exists())

    def records(self, run: Path) -> list[dict]:
        return [json.loads(x) for x in (run / "queries.jsonl").read_text().splitlines()]


@pytest.fixture
def board(tmp_path) -> Board:
    return Board(tmp_path)


def kill_main(board: Board) -> None:
    try:
        os.kill(int(board.pidfile.read_text()), signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_a_killed_batch_is_finished_by_the_next_one_then_a_new_run_starts(board):
    board.leave_unfinished()
    (run,) = board.runs()
    assert [r["query_id"] for r in board.records(run)] == ["q0"]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["batch"] == {"name": "nightly", "args": board.args()[4:]}

    res = board.run()
    assert res.returncode == 3, res.stderr  # the scripted main writes no YAML: every query fails
    assert f"batch nightly: resuming {run}, 2 of 3 measurements to go" in res.stdout
    assert board.runs() == [run]
    assert [r["query_id"] for r in board.records(run)] == ["q0", "q1", "q2"]
    summary = res.stdout.strip().splitlines()[-1]
    assert summary == board.log.read_text().splitlines()[-1]
    assert "| 0 ok, 3 failed, 3/3 recorded, 2 this batch |" in summary and summary.endswith(f"run {run} | exit 3")

    again = board.run()
    assert again.returncode == 3 and "new run" in again.stdout
    assert len(board.runs()) == 2
    assert len(board.log.read_text().splitlines()) == 2  # one summary line per batch


def test_a_hung_main_is_killed_and_recorded_and_the_batch_goes_on(board):
    board.hang.touch()
    res = board.run(run=("--idle-timeout", "2"))  # q0 and q2 must start and exit within it, loaded or not
    assert res.returncode == 3, res.stderr
    (run,) = board.runs()
    assert [(r["query_id"], r["status"]) for r in board.records(run)] == [
        ("q0", "error"), ("q1", "idle_timeout"), ("q2", "error")]
    assert wait_for(lambda: not _alive(int(board.pidfile.read_text())))
    assert "| 0 ok, 3 failed, 3/3 recorded, 3 this batch |" in board.log.read_text()


def test_fresh_leaves_the_unfinished_run_and_starts_another(board):
    board.leave_unfinished()
    res = board.run("--fresh")
    assert res.returncode == 3 and "new run" in res.stdout
    assert sorted(len(board.records(r)) for r in board.runs()) == [1, 3]  # ids may share their second
    assert "resuming" in board.run().stdout  # the unfinished one is still found later


def test_sigterm_stops_the_query_in_flight_writes_a_final_state_and_summarises(board):
    proc = board.start_hanging()
    child = int(board.pidfile.read_text())
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=HANG_S)
    assert proc.returncode == 143, err
    assert wait_for(lambda: not _alive(child)), "the query in flight was left running"
    (run,) = board.runs()
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "interrupted" and m["interrupted_by"] == "signal SIGTERM"
    last = board.log.read_text().splitlines()[-1]
    assert err.strip().splitlines()[-1] == last
    assert "0 ok, 1 failed, 1/3 recorded, 1 this batch" in last
    assert "stopped by signal 15; the next batch finishes this run | exit 143" in last
    board.hang.unlink()
    assert board.run().returncode == 3
    assert [r["query_id"] for r in board.records(run)] == ["q0", "q1", "q2"]


def test_a_second_batch_while_one_measures_exits_4_with_one_line(board):
    first = board.start_hanging()
    try:
        second = board.run()
        assert second.returncode == 4
        (line,) = second.stderr.splitlines()
        assert f"another measurement holds this machine: PID {first.pid}" in line and line.endswith("exit 4")
        assert second.stdout == ""
        assert board.log.read_text().splitlines()[-1] == line
        assert len(board.runs()) == 1
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=HANG_S)


def test_a_model_changed_between_batches_is_refused_naming_the_field(board):
    board.leave_unfinished()
    write_vocab_model(board.model, context_length=4096)  # same path, other bytes
    res = board.run()
    assert res.returncode == 1
    assert "model SHA-256 was" in res.stderr and "its timings would not be comparable" in res.stderr
    assert "--fresh" in res.stderr
    assert "exit 1" in board.log.read_text().splitlines()[-1]
    (run,) = board.runs()
    assert len(board.records(run)) == 1


def test_no_space_while_writing_stops_cleanly_naming_the_space_needed(board, monkeypatch):
    from click.testing import CliRunner

    from orchestrator.cli import main

    def full_on_second(argv):
        if len(fake.calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")

    fake = FakeMain(on_call=full_on_second)
    monkeypatch.setattr("orchestrator.engine.child.run_child", fake)
    monkeypatch.setenv("EDGEBENCH_ROOT", str(board.root))
    monkeypatch.setattr(signal, "signal", lambda *a: None)  # the batch's SIGTERM handler would outlive it here
    res = CliRunner().invoke(main, board.args())
    assert res.exit_code == 1, res.output
    assert "is full:" in res.output and "measurements left need about" in res.output
    assert "free at least" in res.output and "edgebench runs prune --keep N" in res.output
    (run,) = board.runs()
    recs = board.records(run)
    assert [(r["query_id"], r["status"]) for r in recs] == [("q0", "ok")]
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "interrupted" and "No space left on device" in m["interrupted_by"]


def test_a_disk_too_full_for_the_next_query_stops_before_it(board, monkeypatch):
    from click.testing import CliRunner

    from orchestrator.cli import main

    fake = FakeMain()
    monkeypatch.setattr("orchestrator.engine.child.run_child", fake)
    monkeypatch.setenv("EDGEBENCH_ROOT", str(board.root))
    monkeypatch.setattr(signal, "signal", lambda *a: None)
    # statvfs is the OS boundary: the disk has 1 MB free until the first record, then 10 kB
    real = os.statvfs

    def statvfs(path):
        st = real(path)
        recorded = any(p.stat().st_size for p in board.root.glob("reports/*/queries.jsonl"))
        free = 10_000 if recorded else 1_000_000
        return os.statvfs_result((st.f_bsize, 1000, st.f_blocks, free // 1000, free // 1000, *tuple(st)[5:]))

    monkeypatch.setattr(os, "statvfs", statvfs)
    res = CliRunner().invoke(main, board.args())
    assert res.exit_code == 1, res.output
    (run,) = board.runs()
    assert len(board.records(run)) == 1 and len(fake.calls) == 1  # stopped before the second query
    assert "10.0 KB free, and the 2 measurements left need about" in res.output


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ")[1][0] != "Z"


def test_an_experiment_batch_finishes_its_own_plan_run_with_the_plan_recorded(board):
    plan = board.root / "mine.yaml"
    plan.write_text("name: mine\nselect:\n  rule: median\n  categories: [simple]\ninterval_s: 0.5\n"
                    "warmup: 1\nrepeat: 2\nseed: 7\n")
    args = ["batch", "--name", "nightly", "--", "experiment", "--plan", str(plan), "--binary", str(board.main),
            "--model", str(board.model), "--workload", str(board.workload)]
    res = subprocess.run([sys.executable, "-m", "orchestrator", *args], env=board.env, capture_output=True,
                         text=True, timeout=HANG_S)
    assert res.returncode == 3, res.stderr  # the scripted main writes no YAML: every query fails
    (run,) = board.runs()
    m = json.loads((run / "manifest.json").read_text())
    assert m["batch"]["name"] == "nightly" and m["experiment"]["name"] == "mine"
    assert "results" in m  # the plan's intervals are written as `experiment` writes them
    assert [(r["query_id"], r["phase"]) for r in board.records(run)] == [
        ("q0", "warmup"), ("q0", "measure"), ("q0", "measure")]  # three of one length: the first is the median
    refused = subprocess.run([sys.executable, "-m", "orchestrator", "batch", "--name", "x", "--", "experiment",
                              "all"], env=board.env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "a batch runs one experiment plan" in refused.stderr
