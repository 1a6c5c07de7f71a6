"""One measurement per machine. Two measuring commands at once share cores, memory bandwidth
and the GPU, so each skews the other's timings; `run`, `bench`, experiments and cron batches
hold this lock for as long as they measure. Read-only commands never take it.

The lock is an flock (filelock) on a file in /tmp (EDGEBENCH_LOCK overrides): the kernel drops
it when its holder dies, even by SIGKILL, so a dead holder never blocks the machine. Beside
it, `<lock>.json` names the holder (PID, command, run folder) for the refusal message; it is
written after the lock is taken and removed before it is released, so a holder file found
by the next holder was left by a process that died holding the lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import filelock

from orchestrator import exitcodes
from orchestrator.errors import UserError
from orchestrator.fsutil import atomic_write

LENT_ENV = "EDGEBENCH_LOCK_LENT"


class LockHeld(UserError):
    exit_code = exitcodes.LOCKED


def lock_path() -> Path:
    return Path(os.environ.get("EDGEBENCH_LOCK", "/tmp/edgebench-measure.lock"))


def _holder_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _read_holder(path: Path) -> dict:
    try:
        data = json.loads(_holder_path(path).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def pid_alive(pid) -> bool:
    """Whether a process with this PID runs (one of another user's counts); False for None or junk."""
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError, TypeError):
        return False
    except PermissionError:
        return True
    return True


def live_holder() -> dict:
    """The holder file of the machine's lock ({pid, command, run_dir, since}) when the process it
    names still runs, else {}: what `runs` asks before it calls a run folder active."""
    holder = _read_holder(lock_path())
    return holder if pid_alive(holder.get("pid")) else {}


def _lock_owner(path: Path) -> int | None:
    """The PID holding the flock on `path`, from the kernel's table (/proc/locks, Linux): right
    even while the holder has not written its holder file yet, or a dead one's file is still there."""
    try:
        inode = os.stat(path).st_ino
        table = Path("/proc/locks").read_text()
    except OSError:
        return None
    for row in table.splitlines():
        f = row.split()  # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; waiters have "->" after the number
        if len(f) >= 6 and f[1] == "FLOCK" and f[5].rsplit(":", 1)[-1] == str(inode) and f[4].isdigit():
            return int(f[4]) or None
    return None


def _command_of(pid: int) -> str | None:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    except OSError:
        return None
    return " ".join(a.decode(errors="replace") for a in argv) or None


def _describe_holder(path: Path) -> str:
    h = _read_holder(path)
    owner = _lock_owner(path)
    if h.get("pid") is not None and (owner is None or h.get("pid") == owner) and pid_alive(h.get("pid")):
        where = f", run folder {h['run_dir']}" if h.get("run_dir") else ""
        return f"PID {h['pid']} ({h.get('command') or 'command not recorded'}){where}"
    if owner is not None:
        return f"PID {owner} ({_command_of(owner) or 'command unknown'}), which is starting"
    return "a measurement that is starting and has not named itself yet"


class MeasureLock:
    """Held by one measuring process. `set_run_dir` names the run folder once it exists."""

    def __init__(self, path: Path, command: list[str], lent: bool = False):
        self.path = path
        self.lent = lent
        self.holder = {"pid": os.getpid(), "command": " ".join(command), "run_dir": None,
                       "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}

    def set_run_dir(self, run_dir: Path) -> None:
        self.holder["run_dir"] = str(run_dir)
        if not self.lent:
            self._write()

    def _write(self) -> None:
        # Only the refusal message reads it: a holder file another user left in sticky /tmp
        # cannot be replaced, and that must not stop this measurement.
        try:
            atomic_write(_holder_path(self.path), json.dumps(self.holder).encode())
        except OSError:
            pass


@contextlib.contextmanager
def measuring(command: list[str] | None = None, log=None) -> Iterator[MeasureLock]:
    """Hold the machine's measurement lock, or raise LockHeld at once naming the holder.

    A measuring command that runs another one as its child (bench measures a real `edgebench
    run`) lends it the lock through EDGEBENCH_LOCK_LENT=<its PID>; the child then measures
    under its parent's lock instead of refusing."""
    path = lock_path()
    lent = os.environ.get(LENT_ENV)
    if lent and lent == str(os.getppid()) and _read_holder(path).get("pid") == os.getppid():
        yield MeasureLock(path, command if command is not None else sys.argv, lent=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    # 0o666: on a board several users measure; the first one's lock file must not lock out the next
    lock = filelock.FileLock(str(path), timeout=0, mode=0o666)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise LockHeld(f"another measurement holds this machine: {_describe_holder(path)}",
                       fix="wait for it to finish (two measurements at once skew each other's timings)") from None
    held = MeasureLock(path, command if command is not None else sys.argv)
    try:
        left = _read_holder(path)
        if log and left and left.get("pid") != os.getpid() and not pid_alive(left.get("pid")):
            log(f"note: took over the measurement lock left by PID {left.get('pid')} "
                f"({left.get('command')}), which is no longer running")
        held._write()
        yield held
    finally:
        with contextlib.suppress(OSError):
            _holder_path(path).unlink()
        lock.release()
