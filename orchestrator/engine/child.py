"""Spawn `main` on a pty and timestamp every chunk it writes.

stdout stays on the pty (the binary flushes after each token, so each chunk arrives as it is
written); stderr, where llama.cpp logs model load, buffers and timings, goes to a file opened
inside the child (descriptors opened before the spawn are closed by the pty fork). Everything
the query started is killed on the way out, whatever happens: its process group, and every
descendant, even one that left the group with setsid(). While a query runs this process is a
child subreaper (Linux), so such a descendant, orphaned when `main` exits, becomes our child
instead of init's: it can still be found, killed and reaped."""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.sampling.base import Sampler


@dataclass
class ChildResult:
    t_spawn_ns: int
    chunks: list[tuple[int, bytes]] = field(default_factory=list)  # (perf_counter_ns at arrival, bytes)
    t_exit_ns: int = 0
    exit_code: int | None = None
    signal: int | None = None
    status: str = "ok"  # ok | error | crashed | idle_timeout | timeout | spawn_error
    error: str | None = None
    peak_rss_bytes: int | None = None  # the kernel's high-water mark (wait4), not a sample
    cpu_s: float | None = None  # user + system CPU time of the child
    samples: dict[str, list[dict]] = field(default_factory=dict)


def _child_setup(stderr_path: bytes):
    def setup():
        import termios

        # The run's handlers (exit on SIGTERM/SIGHUP, KeyboardInterrupt) must not run in this copy of it.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)

        fd = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 2)
        os.close(fd)
        # Raw newlines on the pty: the stream then matches the bytes llama.cpp printed.
        attrs = termios.tcgetattr(1)
        attrs[1] &= ~termios.ONLCR
        termios.tcsetattr(1, termios.TCSANOW, attrs)

    return setup


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


_PR_SET_CHILD_SUBREAPER = 36


def _subreaper(on: bool) -> None:
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: a setsid() descendant goes to init, the tree walk still finds the living ones


def _family() -> set[int]:
    import psutil

    try:
        return {p.pid for p in psutil.Process().children(recursive=True)}
    except psutil.Error:
        return set()


def _kill_tree(pid: int, before: set[int]) -> None:
    """SIGKILL every process the query started that is still there after `main` (`pid`) was
    reaped with its group: our descendants that were not there before the spawn (orphans are
    handed to us as subreaper). Collected before the first kill (a killed parent's children
    move), then reaped."""
    import psutil

    me = psutil.Process()
    for _ in range(10):  # a grandchild may be forked while we kill: a few rounds catch it
        try:
            tree = [p for p in me.children(recursive=True) if p.pid not in before and p.pid != pid]
        except psutil.Error:
            return
        if not tree:
            return
        for p in tree:
            try:
                p.kill()
            except psutil.Error:
                pass
        ours = []
        for p in tree:
            try:
                if p.ppid() == me.pid:
                    ours.append(p.pid)
            except psutil.Error:
                pass
        _reap_all(ours)


def _reap_all(pids: list[int], limit_s: float = 5.0) -> None:
    """Reap killed children, never blocking on one the kernel is slow to end (a process in
    uninterruptible sleep dies when its I/O returns): it stays a zombie of ours instead."""
    deadline = time.monotonic() + limit_s
    left = set(pids)
    while left and time.monotonic() < deadline:
        for pid in list(left):
            try:
                if os.waitpid(pid, os.WNOHANG)[0]:
                    left.discard(pid)
            except ChildProcessError:
                left.discard(pid)
        if left:
            time.sleep(0.001)


def _reap(pid: int, deadline_ns: int):
    """wait4 without hanging on a child that closed its output but will not exit. Once it has
    exited, and before it is reaped (its zombie still holds the group id, so the id cannot name
    another group yet), what it left in its process group is killed."""
    pause = 0.0005
    while True:
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            _kill_group(pid)
            _, status, usage = os.wait4(pid, 0)
            return status, usage
        if time.perf_counter_ns() > deadline_ns:
            _kill_group(pid)
            _, status, usage = os.wait4(pid, 0)
            return status, usage
        time.sleep(pause)
        pause = min(pause * 2, 0.01)


def run_child(argv: list[str], cwd: Path, stderr_path: Path, samplers: list[Sampler],
              idle_timeout_s: float, timeout_s: float) -> ChildResult:
    before = _family()
    _subreaper(True)
    try:
        return _run(argv, cwd, stderr_path, samplers, idle_timeout_s, timeout_s, before)
    finally:
        _subreaper(False)


def _run(argv: list[str], cwd: Path, stderr_path: Path, samplers: list[Sampler],
         idle_timeout_s: float, timeout_s: float, before: set[int]) -> ChildResult:
    import pexpect

    from orchestrator.engine.argv import exec_bytes

    # The UTF-8 bytes main must read, as the str that exec encodes back to exactly those bytes under
    # any locale (surrogateescape): under LANG=C a plain str argv is encoded as ASCII and every
    # non-ASCII prompt fails to spawn.
    exec_argv = [os.fsdecode(a) for a in exec_bytes(argv)]
    t_spawn = time.perf_counter_ns()
    res = ChildResult(t_spawn_ns=t_spawn)
    try:
        child = pexpect.spawn(exec_argv[0], exec_argv[1:], cwd=str(cwd), echo=False,
                              preexec_fn=_child_setup(os.fsencode(stderr_path)))
    except (OSError, ValueError, UnicodeError, pexpect.ExceptionPexpect) as exc:
        res.status, res.error, res.t_exit_ns = "spawn_error", f"cannot start {argv[0]}: {exc}", time.perf_counter_ns()
        return res
    for s in samplers:
        s.start(child.pid, t_spawn)
    pumped = False
    try:
        _pump(child.child_fd, res, t_spawn, idle_timeout_s, timeout_s)
        pumped = True
    finally:
        if not pumped or res.status in ("idle_timeout", "timeout"):
            _kill_group(child.pid)
        # Reap it ourselves: wait4 gives the kernel's own peak RSS and CPU time of the child,
        # exact even for a query shorter than one sampling interval.
        status, usage = _reap(child.pid, t_spawn + int(timeout_s * 1e9))
        res.t_exit_ns = time.perf_counter_ns()
        _kill_tree(child.pid, before)
        child.terminated = child.ptyproc.terminated = True  # tell pexpect it is reaped
        child.delayafterclose = child.ptyproc.delayafterclose = 0  # it sleeps 0.1 s after close by default
        for s in samplers:
            res.samples[s.name] = s.stop()
        child.close(force=True)
    res.peak_rss_bytes = usage.ru_maxrss * 1024
    res.cpu_s = usage.ru_utime + usage.ru_stime
    if os.WIFSIGNALED(status):
        res.signal = os.WTERMSIG(status)
    else:
        res.exit_code = os.WEXITSTATUS(status)
    if res.status == "ok":
        if res.signal is not None:
            res.status, res.error = "crashed", f"killed by signal {res.signal} ({signal.Signals(res.signal).name})"
        elif res.exit_code:
            res.status, res.error = "error", f"exited with status {res.exit_code}"
    elif res.status == "idle_timeout":
        res.error = f"printed nothing for {idle_timeout_s:g} s (--idle-timeout); killed"
    elif res.status == "timeout":
        res.error = f"ran longer than {timeout_s:g} s (--timeout); killed"
    return res


def _pump(fd: int, res: ChildResult, t_spawn: int, idle_timeout_s: float, timeout_s: float) -> None:
    with _signal_wakeup() as wake:
        _pump_until_done(fd, wake, res, t_spawn, idle_timeout_s, timeout_s)


@contextlib.contextmanager
def _signal_wakeup():
    """A descriptor that becomes readable when a signal with a Python handler arrives. The
    kernel may deliver SIGTERM to a sampler thread; select() in this thread then sleeps on
    until the child prints or the idle timeout passes, and the handler only runs after that.
    With the wakeup descriptor in the select, the signal ends the query at once."""
    if threading.current_thread() is not threading.main_thread():
        yield None
        return
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    try:
        previous = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    except ValueError:
        os.close(r)
        os.close(w)
        yield None
        return
    try:
        yield r
    finally:
        signal.set_wakeup_fd(previous)
        os.close(r)
        os.close(w)


def _pump_until_done(fd: int, wake: int | None, res: ChildResult, t_spawn: int, idle_timeout_s: float,
                     timeout_s: float) -> None:
    from orchestrator.interrupts import raise_if_received

    deadline = t_spawn + int(timeout_s * 1e9)
    idle_deadline = time.perf_counter_ns() + int(idle_timeout_s * 1e9)
    watched = [fd] if wake is None else [fd, wake]
    raise_if_received()  # a signal that came while spawning, its exit swallowed by an at-fork hook
    while True:
        now = time.perf_counter_ns()
        if now >= deadline:
            res.status = "timeout"
            return
        if now >= idle_deadline:
            res.status = "idle_timeout"
            return
        ready, _, _ = select.select(watched, [], [], (min(deadline, idle_deadline) - now) / 1e9)
        if wake is not None and wake in ready:
            with contextlib.suppress(OSError):
                os.read(wake, 512)
            raise_if_received()
        if fd not in ready:
            continue
        try:
            data = os.read(fd, 65536)
        except OSError as exc:
            if exc.errno == errno.EIO:  # Linux: the pty's other side closed (the child exited)
                return
            raise
        t = time.perf_counter_ns()
        if not data:
            return
        res.chunks.append((t, data))
        idle_deadline = t + int(idle_timeout_s * 1e9)
