"""`edgebench run` as a script or cron sees it: the machine-wide lock, exit codes, signals, and
options that --resume refuses. `main` is a shell script here (the session never needs more
before the first query), so these run in seconds without llama.cpp."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from fakemain import write_vocab_model
from waiting import HANG_S, wait_for


def script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def env(tmp_path):
    return dict(os.environ, EDGEBENCH_ROOT=str(tmp_path), EDGEBENCH_LOCK=str(tmp_path / "measure.lock"))


@pytest.fixture
def args(tmp_path):
    model = write_vocab_model(tmp_path / "vocab.gguf")
    wl = tmp_path / "w.jsonl"
    wl.write_text("".join(json.dumps({"id": f"q{i}", "category": "simple", "prompt": f"hello {i}", "max_tokens": 4,
                                      "prompt_tokens_est": 3}) + "\n" for i in range(3)))

    def make(binary: Path, *extra):
        return [sys.executable, "-m", "orchestrator", "run", "--binary", str(binary), "--model", str(model),
                "--workload", str(wl), "--reports-dir", str(tmp_path / "out"), *extra]

    return make


def run_dirs(tmp_path) -> list[Path]:
    out = tmp_path / "out"
    return sorted(p for p in out.iterdir() if p.is_dir()) if out.exists() else []


def test_a_second_measurement_is_refused_at_once_and_a_dead_holder_is_taken_over(tmp_path, env, args):
    sleeper = script(tmp_path / "main", "sleep 60")
    first = subprocess.Popen(args(sleeper), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
    try:
        assert wait_for(lambda: run_dirs(tmp_path) and (Path(env["EDGEBENCH_LOCK"] + ".json")).exists()
                        and "run_dir\": \"/" in Path(env["EDGEBENCH_LOCK"] + ".json").read_text())
        second = subprocess.run(args(sleeper), env=env, capture_output=True, text=True, timeout=HANG_S)
        assert second.returncode == 4, second.stderr
        assert first.poll() is None  # refused while the holder still runs its 60 s query: it did not wait
        assert f"PID {first.pid}" in second.stderr and str(run_dirs(tmp_path)[0]) in second.stderr
        assert len(run_dirs(tmp_path)) == 1  # the refused command created nothing
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    killed = run_dirs(tmp_path)[0]
    quick = script(tmp_path / "quick", "exit 0")
    third = subprocess.run(args(quick), env=env, capture_output=True, text=True, timeout=60)
    assert f"took over the measurement lock left by PID {first.pid}" in third.stdout
    assert len(run_dirs(tmp_path)) == 2
    new = next(d for d in run_dirs(tmp_path) if d != killed)  # ids of one second sort at random
    # a main that writes no -ld YAML fails every query: the run finishes and says so with 3
    assert third.returncode == 3, third.stderr
    recs = [json.loads(x) for x in (new / "queries.jsonl").read_text().splitlines()]
    assert [r["status"] for r in recs] == ["error"] * 3


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM])
def test_hangup_and_term_stop_the_query_in_flight_and_exit_128_plus_signal(tmp_path, env, args, sig):
    pidfile = tmp_path / "child.pid"
    sleeper = script(tmp_path / "main", f"echo $$ > {pidfile}; sleep 60")
    proc = subprocess.Popen(args(sleeper), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert wait_for(lambda: pidfile.exists() and pidfile.read_text().strip())
    child = int(pidfile.read_text())
    proc.send_signal(sig)
    assert proc.wait(timeout=HANG_S) == 128 + sig
    assert wait_for(lambda: not _alive(child)), "the query in flight was left running"
    m = json.loads((run_dirs(tmp_path)[0] / "manifest.json").read_text())
    assert m["status"] == "interrupted" and m["interrupted_by"] == f"signal {sig.name}"
    assert not Path(env["EDGEBENCH_LOCK"] + ".json").exists()  # released on the way out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie nobody reaps (no init in a container) is dead
        return f.read().split(") ")[1][0] != "Z"


def test_options_that_would_change_a_resumed_run_are_refused(tmp_path, env, args):
    quick = script(tmp_path / "main", "exit 0")
    subprocess.run(args(quick), env=env, capture_output=True, timeout=60)
    run = run_dirs(tmp_path)[0]
    res = subprocess.run([sys.executable, "-m", "orchestrator", "run", "--resume", str(run), "--limit", "1",
                          "--interval", "0.01"], env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert "--limit, --interval would change the run being resumed" in res.stderr
    res = subprocess.run([sys.executable, "-m", "orchestrator", "run", "--force"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 2 and "--force only applies to --resume" in res.stderr


def test_help_documents_the_exit_codes():
    res = subprocess.run([sys.executable, "-m", "orchestrator", "run", "--help"], capture_output=True, text=True)
    assert "3 the run finished but some queries failed" in res.stdout and "4 another" in res.stdout
