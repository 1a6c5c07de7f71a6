"""Signals a measuring command turns into a clean exit: cron's timeout and systemd's stop send
SIGTERM, a dropped SSH session SIGHUP. Each becomes SystemExit(128 + signal), so the query in
flight has its process group killed on the way out, samplers close, the manifest says
`interrupted`, and what is recorded stays recorded; the exit code tells a script which signal.

A child forked to become `main` runs Python until its exec and inherits these handlers. If the
run dies in that window, the pty's hang-up reaches the child; raising SystemExit there would
unwind a copy of the run's stack and write `interrupted` into a manifest that the killed run
left `running`. So the handler exits at once in any process but the one that installed it."""

from __future__ import annotations

import os
import signal
import sys

EXITING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def exit_on_signals() -> None:
    owner = os.getpid()

    def handler(signum, frame):
        if os.getpid() != owner:
            os._exit(128 + signum)
        sys.exit(128 + signum)

    for sig in EXITING_SIGNALS:
        signal.signal(sig, handler)
