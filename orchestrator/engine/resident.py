"""A process that lives for the whole run (a llama.cpp server): started in a session of its own
with its output in a log file, watched, and stopped with everything it started.

Its CPU time and peak memory over a window are read from /proc (psutil) rather than wait4, which
only speaks once the process has gone: `/proc/PID/clear_refs` with "5" resets the kernel's
high-water mark of resident memory (VmHWM, Linux ≥ 4.0), so the peak read at a window's end is
the peak within it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil


class Resident:
    def __init__(self, argv: list[str], log_path: Path, cwd: Path):
        self.argv, self.log_path, self.cwd = argv, Path(log_path), Path(cwd)
        self.proc: subprocess.Popen | None = None
        self.t_spawn_ns = 0
        self.log_offset = 0  # where this process's output starts in the (appended) log

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> None:
        from orchestrator.engine.argv import exec_bytes

        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n# edgebench started: {' '.join(self.argv)}\n".encode("utf-8", "replace"))
            log.flush()
            self.log_offset = log.tell()
            self.t_spawn_ns = time.perf_counter_ns()
            # a session of its own: the run's terminal signals do not reach it, and stop() ends its group
            self.proc = subprocess.Popen(exec_bytes(self.argv), cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=_die_with_parent)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ended(self) -> str | None:
        """How it ended, in words (None while it runs)."""
        if self.proc is None or self.proc.poll() is None:
            return None
        code = self.proc.returncode
        if code < 0:
            try:
                return f"killed by signal {-code} ({signal.Signals(-code).name})"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exited with status {code}"

    def wait_end(self, limit_s: float) -> str | None:
        """How it ended, once it has (within `limit_s`), else None."""
        try:
            self.proc.wait(limit_s)
        except subprocess.TimeoutExpired:
            return None
        return self.ended()

    def exit_fields(self) -> tuple[int | None, int | None]:
        """(exit code, signal) once it has ended."""
        if self.proc is None or self.proc.returncode is None:
            return None, None
        code = self.proc.returncode
        return (None, -code) if code < 0 else (code, None)

    def log_since(self, offset: int, limit: int = 1 << 20) -> bytes:
        """What it wrote from `offset` on (at most the last `limit` bytes)."""
        try:
            with open(self.log_path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(offset, size - limit))
                return f.read()
        except OSError:
            return b""

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def tail(self, n: int = 2000) -> str:
        return self.log_since(self.log_offset, n).decode("utf-8", "replace")

    # -- the window's own figures -----------------------------------------------------------
    def reset_peak_rss(self) -> bool:
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as f:
                f.write("5")
            return True
        except OSError:
            return False

    def peak_rss_bytes(self) -> int | None:
        """VmHWM: the kernel's high-water mark of resident memory since the last reset."""
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
        return None

    def cpu_s(self) -> float | None:
        """User + system CPU seconds since it started (all its threads)."""
        try:
            t = psutil.Process(self.pid).cpu_times()
            return t.user + t.system
        except psutil.Error:
            return None

    # -- the end -----------------------------------------------------------------------------
    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM its group, SIGKILL what is left after `grace_s`, and every descendant that left
        the group; reaped."""
        if self.proc is None:
            return
        pid = self.proc.pid
        try:
            family = psutil.Process(pid).children(recursive=True)
        except psutil.Error:
            family = []
        if self.proc.poll() is None:
            _signal_group(pid, signal.SIGTERM)
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                _signal_group(pid, signal.SIGKILL)  # before reaping: its group id cannot name another group yet
        for p in family:
            try:
                p.kill()
            except psutil.Error:
                pass
        self.proc.wait()


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: a run killed outright (SIGKILL, nothing of it left to stop the server)
    takes its server with it instead of leaving it loaded and listening (Linux)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
