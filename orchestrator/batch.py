"""An unattended batch: find this batch's unfinished run and finish it before starting a new
one, stop before the disk fills, and end with one summary line in its log for cron mail.

A batch is known by its name and its arguments; the run folders it creates record both in
their manifest (`"batch": {"name", "args"}`), so the next batch finds the one a crash, a
reboot or a full disk left unfinished, whatever its folder is called.
"""

from __future__ import annotations

import datetime as dt
import errno
import io
import os
from pathlib import Path

from orchestrator.errors import UserError

# A query's footprint before this run has recorded one: a generous guess (a twin's query
# takes tens of kB); from the first record on, the run's own average replaces it.
FIRST_QUERY_BYTES = 256 * 1024
# Keep room for this many queries' worth beyond the next one: the record, its samples and the
# manifest's final rewrite must never be the write that meets a full disk.
MARGIN_QUERIES = 1


class DiskFull(UserError):
    """The disk holding the run has no room for the next query; exit 1, nothing lost."""


def find_unfinished(reports: Path, name: str, args: list[str]) -> Path | None:
    """The newest run of this batch with planned measurements not yet recorded."""
    from orchestrator.runs import batch_runs, read_run

    for path in reversed(batch_runs(reports, name, args)):
        info = read_run(path)
        if info and info.total is not None and info.done < info.total:
            return path
    return None


def per_query_bytes(run_dir: Path) -> int:
    """What one recorded query has cost this run on disk so far (raw files, record, samples)."""
    from orchestrator.runs import folder_size
    from orchestrator.store import RunReader

    n = len(RunReader(run_dir).queries())
    if not n:
        return FIRST_QUERY_BYTES
    used = folder_size(run_dir) - (run_dir / "manifest.json").stat().st_size
    return max(used // n, 4096)


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def disk_full(run_dir: Path | None, pending: int, out_dir: Path, name: str) -> DiskFull:
    """The stop message: free space, what the measurements left need, and how to go on."""
    from orchestrator.runs import human_size

    started = run_dir is not None and (run_dir / "manifest.json").exists()
    each = per_query_bytes(run_dir) if started else FIRST_QUERY_BYTES
    fix = (f"free at least {human_size(each * (1 + MARGIN_QUERIES))} on that disk (edgebench runs prune --keep N "
           f"deletes old runs), then run the batch again: edgebench batch --name {name} resumes where it stopped")
    if not started:
        return DiskFull(f"the disk holding {out_dir} is full ({human_size(free_bytes(_existing(out_dir)))} free): "
                        "no run folder could be written", fix=fix)
    return DiskFull(f"the disk holding {run_dir} is full: {human_size(free_bytes(run_dir))} free, and the "
                    f"{pending} measurement{'s' if pending != 1 else ''} left need about "
                    f"{human_size(each * pending)} ({human_size(each)} each, from this run's own files); the records "
                    "so far are intact", fix=fix)


def check_room(run_dir: Path, pending: int, name: str) -> None:
    """Raise DiskFull before a query that would not fit, rather than let it fail half-written."""
    if pending <= 0:
        return
    need = per_query_bytes(run_dir) * (1 + MARGIN_QUERIES)
    if free_bytes(run_dir) < need:
        raise disk_full(run_dir, pending, run_dir.parent, name)


def is_enospc(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


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

