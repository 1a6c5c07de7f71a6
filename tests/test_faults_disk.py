"""A full card (issue 18, item 3): a small tmpfs that is too small from the start, one that fills
while a query runs (the child's writes and ours meet ENOSPC), and the next command after it.
Each time: exit 1, one message naming the bytes needed, no traceback, the records intact, and a
manifest that says `interrupted`, or still `running` for a process that is gone, which `runs list`
reads as killed and a resume finishes.

Mounting needs root (CI runs as root); elsewhere these tests skip and say so (tests/tmpfs.py)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import tmpfs
from click.testing import CliRunner
from fakemain import FakeMain, fake_binary, write_vocab_model
from waiting import HANG_S

from orchestrator.cli import main


@pytest.fixture
def disk(tmp_path):
    """mount(size) -> a fresh tmpfs folder of that size."""
    mounted = []

    def mount(size: str) -> Path:
        mounted.append(tmpfs.mount(tmp_path / f"disk{len(mounted)}", size))
        return mounted[-1]

    yield mount
    for path in mounted:
        tmpfs.unmount(path)


def fill(folder: Path) -> Path:
    """Take every free byte of the disk holding `folder`, as main.log growing would."""
    path = folder / "fill"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError as exc:
        assert exc.errno == 28
    finally:
        os.close(fd)
    return path


def workload(path: Path, n: int, max_tokens: int = 4) -> Path:
    path.write_text("".join(json.dumps({"id": f"q{i}", "category": "simple", "prompt": f"question {i}",
                                        "max_tokens": max_tokens, "prompt_tokens_est": 4}) + "\n" for i in range(n)))
    return path


def records(run: Path) -> list[dict]:
    data = (run / "queries.jsonl").read_bytes()
    assert not data or data.endswith(b"\n")  # no torn line
    return [json.loads(line) for line in data.splitlines()]


def one_error(output: str) -> str:
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    return errors[0]


@pytest.fixture
def fake_run(tmp_path, monkeypatch):
    """`edgebench run` in process, with a fake `main` at the executor seam. -> (invoke, fake)."""
    model = write_vocab_model(tmp_path / "vocab.gguf")
    binary = fake_binary(tmp_path / "main")
    monkeypatch.setattr(signal, "signal", lambda *a: None)  # `run`'s handlers would outlive it here
    fake = FakeMain()
    monkeypatch.setattr("orchestrator.engine.child.run_child", fake)

    def invoke(out: Path, n: int = 3, resume: Path | None = None):
        args = (["run", "--resume", str(resume)] if resume else
                ["run", "--binary", str(binary), "--model", str(model), "--workload",
                 str(workload(tmp_path / "w.jsonl", n)), "--reports-dir", str(out)])
        res = CliRunner().invoke(main, args)
        assert res.exception is None or isinstance(res.exception, SystemExit), res.output
        return res

    return invoke, fake


def test_a_disk_below_the_floor_stops_before_the_first_query(disk, fake_run):
    invoke, fake = fake_run
    small = disk("300k")
    res = invoke(small / "out")
    assert res.exit_code == 1, res.output
    err = one_error(res.output)
    assert "is full:" in err and "measurements left need about" in err
    assert re.search(r"fix: free at least \d+\.\d KB on that disk", res.output)
    assert fake.calls == []
    (run,) = (small / "out").iterdir()
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "interrupted" and "DiskFull" in m["interrupted_by"]
    assert records(run) == []


def test_a_disk_that_fills_during_a_query_stops_the_run_and_the_resume_finishes_it(disk, fake_run):
    invoke, fake = fake_run
    small = disk("2m")
    filled = []

    def fill_on_second(argv):
        if len(fake.calls) == 2:
            filled.append(fill(small))  # the child's own writes (main.log, the YAML) now meet ENOSPC

    fake.on_call = fill_on_second
    res = invoke(small / "out", n=3)
    assert res.exit_code == 1, res.output
    err = one_error(res.output)
    assert "is full: 0 B free, and the 2 measurements left need about" in err
    assert "fix: free at least" in res.output and "edgebench run --resume" in res.output
    (run,) = (small / "out").iterdir()
    first = records(run)
    assert [(r["query_id"], r["status"]) for r in first] == [("q0", "ok")]
    # the disk is still full: the final state could not be written, and a warning said so
    assert "could not be written" in res.output
    # still `running`, naming this (test) process: once that is gone `runs list` says killed (the
    # subprocess test below), and a resume finishes it as it finishes a killed run
    assert json.loads((run / "manifest.json").read_text())["status"] == "running"

    filled[0].unlink()
    fake.on_call, fake.calls = None, []
    again = invoke(small / "out", resume=run)
    assert again.exit_code == 0, again.output
    recs = records(run)
    assert [r["query_id"] for r in recs] == ["q0", "q1", "q2"] and recs[0] == first[0]
    assert json.loads((run / "manifest.json").read_text())["status"] == "finished"


def test_no_room_for_a_record_leaves_no_torn_line_and_the_final_state_is_written(disk, fake_run, monkeypatch):
    """Our own append meets ENOSPC halfway through the line: the fragment is cut off, the
    attempt's raw files are dropped, and that room is enough for the final manifest."""
    invoke, fake = fake_run
    small = disk("2m")
    from orchestrator import store

    real = os.write

    def short_write(fd, data):
        if len(fake.calls) == 2 and os.readlink(f"/proc/self/fd/{fd}").endswith("queries.jsonl"):
            real(fd, bytes(data[:10]))
            raise OSError(28, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(store.os, "write", short_write)
    res = invoke(small / "out", n=3)
    assert res.exit_code == 1, res.output
    assert "is full:" in one_error(res.output)
    (run,) = (small / "out").iterdir()
    assert [r["query_id"] for r in records(run)] == ["q0"]
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "interrupted" and "DiskFull" in m["interrupted_by"] and "No space" in m["interrupted_by"]
    assert len(list((run / "raw").glob("q1-*/*"))) == 0  # the cut attempt's files are gone


# -- the real llama.cpp `main` and the tiny twin ----------------------------------------------
def test_the_real_main_filling_the_disk_mid_query_ends_in_exit_1_not_a_timeout(tmp_path, disk, llama_bin_dir,
                                                                              tiny_model):
    small = disk("2m")
    # A wrapper `main` that takes every free byte just before the second query's model load: from
    # then on llama.cpp's main.log, stderr.log and -ld YAML writes fail while it streams.
    marker = tmp_path / "spawns"
    wrapper = tmp_path / "bin" / "main"
    wrapper.parent.mkdir()
    take_all = f"head -c 100000000 /dev/zero > {small}/fill 2>/dev/null"
    wrapper.write_text(f"#!/bin/sh\necho x >> {marker}\nif [ $(wc -l < {marker}) -eq 2 ]; then {take_all}; fi\n"
                       f"exec {llama_bin_dir / 'main'} \"$@\"\n")
    wrapper.chmod(0o755)
    wl = workload(tmp_path / "w.jsonl", 3, max_tokens=60)
    env = dict(os.environ, EDGEBENCH_ROOT=str(tmp_path))
    cmd = [sys.executable, "-m", "orchestrator", "run", "--binary", str(wrapper), "--model", str(tiny_model),
           "--workload", str(wl), "--reports-dir", str(small / "out"), "--threads", "1", "--idle-timeout", "60"]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=HANG_S)
    assert res.returncode == 1, res.stdout + res.stderr
    err = one_error(res.stderr)
    assert "is full:" in err and "free at least" in res.stderr
    assert "timeout" not in res.stdout  # a full card must not read as a slow model
    (run,) = (small / "out").iterdir()
    first = records(run)
    assert [(r["query_id"], r["status"]) for r in first] == [("q0", "ok")]
    status = json.loads((run / "manifest.json").read_text())["status"]
    assert status in ("interrupted", "running")  # `running` for a dead PID: read as killed, finished by resume
    listed = subprocess.run([sys.executable, "-m", "orchestrator", "runs", "list", "--reports-dir", str(small / "out")],
                            env=env, capture_output=True, text=True, timeout=60)
    assert re.search(rf"{run.name}\s+\S+\s+(killed|interrupted)\s+1/3", listed.stdout), listed.stdout

    (small / "fill").unlink()
    again = subprocess.run([sys.executable, "-m", "orchestrator", "run", "--resume", str(run)], env=env,
                           capture_output=True, text=True, timeout=HANG_S)
    assert again.returncode == 0, again.stdout + again.stderr
    recs = records(run)
    assert [r["query_id"] for r in recs] == ["q0", "q1", "q2"] and all(r["status"] == "ok" for r in recs)
    assert recs[0] == first[0]
