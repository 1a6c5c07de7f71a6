"""`edgebench runs list|prune` over real run folders: finished, killed (no final state) and one
being measured, which prune never deletes; folders that are not runs are left alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from test_batch import Board, wait_for
from waiting import HANG_S


def eb(board, *args):
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], env=board.env, capture_output=True,
                          text=True, timeout=60)


def test_list_and_prune_spare_the_running_run(tmp_path):
    board = Board(tmp_path)
    assert board.run().returncode == 3  # finished (every query failed)
    board.leave_unfinished()
    # a third run, measuring now: the killed one is resumed by a batch, so use --fresh
    board.hang.touch()
    board.pidfile.unlink(missing_ok=True)
    running = subprocess.Popen([sys.executable, "-m", "orchestrator", *board.args("--fresh")], env=board.env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: board.pidfile.exists() and board.pidfile.read_text().strip())
        # run ids sort by the second they started: these three may share one, so tell them apart by content
        holder = json.loads(open(board.env["EDGEBENCH_LOCK"] + ".json").read())
        (live,) = [p for p in board.runs() if str(p) == holder["run_dir"]]
        (finished,) = [p for p in board.runs() if len(board.records(p)) == 3]
        (dead,) = set(board.runs()) - {live, finished}
        res = eb(board, "runs", "list")
        assert res.returncode == 0, res.stderr
        rows = {line.split()[0]: line.split() for line in res.stdout.splitlines()[1:-1]}
        assert rows[finished.name][2:4] == ["finished", "3/3"]
        assert rows[dead.name][2:4] == ["killed", "1/3"]
        assert rows[live.name][2:4] == ["running", "1/3"]
        assert all(r[-1] == "nightly" for r in rows.values())
        assert "cron" not in rows  # reports/cron holds logs, not a run
        assert res.stdout.splitlines()[-1].startswith("3 runs, ")

        dry = eb(board, "runs", "prune", "--keep", "0", "--dry-run")
        assert f"would delete {finished.name} (finished, 3/3" in dry.stdout
        assert len(board.runs()) == 3

        pruned = eb(board, "runs", "prune", "--keep", "0")
        assert pruned.returncode == 0, pruned.stderr
        assert f"kept {live.name}: it is being measured now" in pruned.stdout
        assert board.runs() == [live] and board.log.exists()
    finally:
        running.send_signal(signal.SIGTERM)
        running.wait(timeout=HANG_S)
    kept = eb(board, "runs", "prune", "--keep", "1")
    assert "deleted 0 runs" in kept.stdout and board.runs() == [live]
    m = json.loads((live / "manifest.json").read_text())
    assert m["status"] == "interrupted"
    assert not os.path.exists(dead)

