"""Signals a measuring command turns into a clean exit: cron's timeout and systemd's stop send
SIGTERM, a dropped SSH session SIGHUP. Each becomes SystemExit(128 + signal), so the query in
flight has its process group killed on the way out, samplers close, the manifest says
`interrupted`, and what is recorded stays recorded; the exit code tells a script which signal.

A child forked to become `main` runs Python until its exec and inherits these handlers. If the
run dies in that window, the pty's hang-up reaches the child; raising SystemExit there would
unwind a copy of the run's stack and write `interrupted` into a manifest that the killed run
left `running`. So the handler exits at once in any process but the one that installed it.

A handler can also run where its SystemExit is swallowed: inside an at-fork hook (logging's,
while `main` is spawned), where Python would print "Exception ignored" with a traceback and go
on. The signal is therefore also remembered, the query loop raises it again
(`raise_if_received`), and that swallowed SystemExit is not printed."""

from __future__ import annotations

import os
import signal
import sys

EXITING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
_received: list[int] = []


def exit_on_signals() -> None:
    owner = os.getpid()

    def handler(signum, frame):
        if os.getpid() != owner:
            os._exit(128 + signum)
        _received.append(signum)
        sys.exit(128 + signum)

    for sig in EXITING_SIGNALS:
        signal.signal(sig, handler)
    default_hook = sys.unraisablehook

    def quiet_swallowed_exit(unraisable):
        if not (isinstance(unraisable.exc_value, SystemExit) and _received):
            default_hook(unraisable)

    sys.unraisablehook = quiet_swallowed_exit


def raise_if_received() -> None:
    """Exit as the handler would have, for a signal whose SystemExit something swallowed."""
    if _received:
        sys.exit(128 + _received[0])
