"""An unattended batch: find this batch's unfinished run and finish it before starting a new
one, and end with one summary line in its log for cron mail. (The session stops any run before
a query the disk has no room for: orchestrator.diskspace.)

A batch is known by its name and its arguments; the run folders it creates record both in
their manifest (`"batch": {"name", "args"}`), so the next batch finds the one a crash, a
reboot or a full disk left unfinished, whatever its folder is called.
"""

from __future__ import annotations

import datetime as dt
import io
import os
from pathlib import Path


def find_unfinished(reports: Path, name: str, args: list[str]) -> Path | None:
    """The newest run of this batch with planned measurements not yet recorded."""
    from orchestrator.runs import batch_runs, read_run

    for path in reversed(batch_runs(reports, name, args)):
        info = read_run(path)
        if info and info.total is not None and info.done < info.total:
            return path
    return None


def summary_line(name: str, what: str, code: int, *, run_dir: Path | None = None, records: list[dict] | None = None,
                 ran: int | None = None, total: int | None = None, note: str | None = None) -> str:
    """One line for the log and for cron mail: when, what ran, ok/failed, folder, exit code."""
    stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    parts = [f"{stamp} batch {name} ({what})"]
    if records is not None:
        ok = sum(1 for r in records if r.get("status") == "ok")
        counts = f"{ok} ok, {len(records) - ok} failed"
        if total is not None:
            counts += f", {len(records)}/{total} recorded"
        if ran is not None:
            counts += f", {ran} this batch"
        parts.append(counts)
    if run_dir is not None:
        parts.append(f"run {run_dir}")
    if note:
        parts.append(note)
    parts.append(f"exit {code}")
    return " ".join(" | ".join(parts).splitlines())


def append_log(log: Path, line: str) -> None:
    """One write of one line; O_APPEND keeps it whole beside the batch's own redirected output."""
    log.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode("utf-8", "replace"))
    finally:
        os.close(fd)


def same_file(stream, path: Path) -> bool:
    """Whether `stream` writes into `path` (cron's `>> log`): then a printed line is already logged."""
    try:
        a, b = os.fstat(stream.fileno()), os.stat(path)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)

