"""Fault injection against the real llama.cpp `main` and the timing twin: `kill -9` of the
batch at several points, SIGTERM mid-query, two batches at once, a full disk (a small tmpfs,
when the test runs as root) and a corrupt model. After each, the next batch must leave every
planned query recorded exactly once and every line of the run folder valid JSON.

The kill points are found by watching the run folder as a user would see it (the scratch folder
of the next query appears just before its `main` is spawned there; llama.cpp logs "generate:" to
its stderr.log when it starts to stream), never by hooks in the product."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import tmpfs
from waiting import HANG_S, wait_for

N = 6


def write_workload(path: Path, n: int = N, max_tokens: int = 160) -> Path:
    path.write_text("".join(json.dumps({"id": f"q{i}", "category": "simple", "prompt": f"Tell me about item {i}.",
                                        "max_tokens": max_tokens, "prompt_tokens_est": 8}) + "\n"
                            for i in range(n)))
    return path


class Batch:
    def __init__(self, root: Path, llama_bin_dir: Path, model: Path, workload: Path, out: Path):
        self.root, self.out = root, out
        self.env = dict(os.environ, EDGEBENCH_ROOT=str(root))
        # one thread: on a loaded 2-core machine more threads spin against each other
        self.cmd = [sys.executable, "-m", "orchestrator", "batch", "--name", "nightly", "--", "run", "--binary",
                    str(llama_bin_dir / "main"), "--model", str(model), "--workload", str(workload), "--reports-dir",
                    str(out), "--threads", "1", "--interval", "0.05"]
        self.log = root / "reports" / "cron" / "nightly.log"

    def start(self) -> subprocess.Popen:
        return subprocess.Popen(self.cmd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def run(self) -> subprocess.CompletedProcess:
        return subprocess.run(self.cmd, env=self.env, capture_output=True, text=True, timeout=HANG_S)

    def runs(self) -> list[Path]:
        return sorted(p for p in self.out.iterdir() if (p / "manifest.json").exists()) if self.out.exists() else []

    def scratch(self, i: int) -> list[Path]:
        """Query i's working folder while it runs (store.py's .scratch/<query>/<item>/)."""
        return list(self.out.glob(f"*/.scratch/q{i}-*/measure-0-*"))

    def n_records(self) -> int:
        path = next(iter(self.out.glob("*/queries.jsonl")), None) if self.out.exists() else None
        return path.read_bytes().count(b"\n") if path else 0


@pytest.fixture
def batch(tmp_path, llama_bin_dir, tiny_model) -> Batch:
    return Batch(tmp_path, llama_bin_dir, tiny_model, write_workload(tmp_path / "w.jsonl"), tmp_path / "out")


def streaming(batch: Batch, i: int) -> bool:
    logs = [p / "stderr.log" for p in batch.scratch(i)]
    return any(p.exists() and b"generate:" in p.read_bytes() for p in logs)


def wait_no_main(batch: Batch, timeout=30.0) -> None:
    """An orphaned `main` loses its pty with the batch and dies of SIGHUP; make sure it did
    before the next batch measures. Ours write under our run folder (other checkouts' tests
    run the same model at the same time)."""
    def mains():
        found = []
        for p in psutil.process_iter(["cmdline", "status"]):
            if p.info["status"] != psutil.STATUS_ZOMBIE and any(str(batch.out) in a for a in p.info["cmdline"] or []):
                found.append(p)
        return found
    assert wait_for(lambda: not mains(), timeout=timeout, step=0.05), f"an orphaned main is still running: {mains()}"


def every_line_json(run: Path) -> list[dict]:
    """Every line of queries.jsonl and samples.jsonl parses, and each ends with its newline."""
    for name in ("samples.jsonl", "queries.jsonl"):
        data = (run / name).read_bytes()
        assert not data or data.endswith(b"\n"), f"{name} ends in a torn line"
        rows = [json.loads(x) for x in data.split(b"\n") if x]
    json.loads((run / "manifest.json").read_text())
    return rows


def assert_complete(batch: Batch, run: Path, statuses=("ok",)) -> list[dict]:
    recs = every_line_json(run)
    assert [r["query_id"] for r in recs] == [f"q{i}" for i in range(N)]  # each once, in plan order
    assert {r["status"] for r in recs} <= set(statuses), [(r["query_id"], r["status"], r.get("error")) for r in recs]
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "finished" and m["n_queries"] == N
    return recs


@pytest.mark.parametrize("point", ["spawn", "mid-stream", "between-record-and-next-query"])
def test_kill_9_then_the_next_batch_records_every_query_exactly_once(batch, tiny_model, point):
    proc = batch.start()
    if point == "spawn":
        hit = wait_for(lambda: batch.scratch(2) or proc.poll() is not None, step=0.002)
    elif point == "mid-stream":
        hit = wait_for(lambda: streaming(batch, 2) or proc.poll() is not None, step=0.002)
    else:
        hit = wait_for(lambda: batch.n_records() >= 2 or proc.poll() is not None, step=0.002)
    assert proc.poll() is None, proc.communicate()
    proc.kill()
    proc.wait()
    assert hit, f"never reached {point}"
    wait_no_main(batch)
    (run,) = batch.runs()
    before = every_line_json(run)  # what the kill left is already valid
    assert [r["query_id"] for r in before] == ["q0", "q1"]
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "running"  # SIGKILL: no final state, which is what the next batch relies on not needing
    if point == "mid-stream":  # and a power cut in the middle of two appends
        for name, torn in (("queries.jsonl", b'{"query_id": "q2", "stat'), ("samples.jsonl", b'{"query_id": "q')):
            with open(run / name, "ab") as f:
                f.write(torn)

    res = batch.run()
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"resuming {run}, {N - 2} of {N} measurements to go" in res.stdout
    assert batch.runs() == [run]
    recs = assert_complete(batch, run)
    assert recs[:2] == before  # earlier records untouched
    last = batch.log.read_text().splitlines()[-1]
    assert f"| {N} ok, 0 failed, {N}/{N} recorded, {N - 2} this batch | run {run} | exit 0" in last


def test_sigterm_mid_query_and_a_second_batch_meanwhile(batch, tiny_model):
    proc = batch.start()
    assert wait_for(lambda: streaming(batch, 1) or proc.poll() is not None) and proc.poll() is None
    second = batch.run()
    assert second.returncode == 4
    (line,) = second.stderr.splitlines()
    assert f"another measurement holds this machine: PID {proc.pid}" in line
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=HANG_S)
    assert proc.returncode == 143, err
    wait_no_main(batch)  # the query in flight was killed, not left running
    (run,) = batch.runs()
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "interrupted" and m["interrupted_by"] == "signal SIGTERM"
    # q1 was streaming when the second batch started; it may have ended while that batch was refused:
    # what is recorded is whole and in plan order, and the query in flight (if any) left no record
    recorded = [r["query_id"] for r in every_line_json(run)]
    assert recorded[:1] == ["q0"] and recorded == [f"q{i}" for i in range(len(recorded))]
    assert "stopped by signal 15" in err.splitlines()[-1]
    res = batch.run()
    assert res.returncode == 0, res.stdout + res.stderr
    assert_complete(batch, run)


def test_a_corrupt_model_fails_each_query_and_the_batch_goes_on(tmp_path, llama_bin_dir, tiny_model):
    # Whole in size (a cut-short copy is refused before any query, with exit 1), but a tensor's name
    # is garbled: edgebench reads the header, and main fails to load the model on every query.
    data = tiny_model.read_bytes()
    assert data.count(b"token_embd.weight") == 1
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(data.replace(b"token_embd.weight", b"token_embd.weigXt"))
    b = Batch(tmp_path, llama_bin_dir, broken, write_workload(tmp_path / "w.jsonl", max_tokens=8), tmp_path / "out")
    res = b.run()
    assert res.returncode == 3, res.stdout + res.stderr
    (run,) = b.runs()
    recs = assert_complete(b, run, statuses=("crashed", "error"))
    assert all("token_embd.weight" in (r.get("stderr_tail") or "") for r in recs)  # main says what it missed
    assert f"| 0 ok, {N} failed, {N}/{N} recorded" in b.log.read_text().splitlines()[-1]


def test_a_model_cut_short_is_refused_before_any_query(tmp_path, llama_bin_dir, tiny_model):
    broken = tmp_path / "short.gguf"
    with open(tiny_model, "rb") as src, open(broken, "wb") as dst:  # an interrupted copy: header whole, tensors not
        dst.write(src.read(tiny_model.stat().st_size - 100_000))
    b = Batch(tmp_path, llama_bin_dir, broken, write_workload(tmp_path / "w.jsonl", max_tokens=8), tmp_path / "out")
    res = b.run()
    assert res.returncode == 1 and "100000 bytes missing" in res.stderr, res.stdout + res.stderr
    assert not b.runs()  # nothing measured, nothing to resume


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmpfs.mount(tmp_path / "disk", "600k")
    yield mnt
    tmpfs.unmount(mnt)


def test_a_full_disk_stops_the_batch_cleanly_and_the_next_one_finishes(tmp_path, llama_bin_dir, tiny_model,
                                                                     small_disk):
    n = 40
    b = Batch(tmp_path, llama_bin_dir, tiny_model, write_workload(tmp_path / "w.jsonl", n=n, max_tokens=8),
              small_disk / "out")
    res = b.run()
    assert res.returncode == 1, res.stdout + res.stderr
    (run,) = b.runs()
    before = every_line_json(run)
    assert 0 < len(before) < n and all(r["status"] == "ok" for r in before)
    left = n - len(before)
    assert f"the disk holding {run} is full:" in res.stderr
    assert f"the {left} measurements left need about" in res.stderr and "free at least" in res.stderr
    last = b.log.read_text().splitlines()[-1]  # the log is on the big disk, under the project root
    assert "is full" in last and last.endswith("exit 1")
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "interrupted" and "DiskFull" in m["interrupted_by"]

    subprocess.run(["mount", "-o", "remount,size=8m", str(small_disk)], check=True)
    again = b.run()
    assert again.returncode == 0, again.stdout + again.stderr
    recs = every_line_json(run)
    assert [r["query_id"] for r in recs] == [f"q{i}" for i in range(n)] and recs[: len(before)] == before
    assert all(r["status"] == "ok" for r in recs)


