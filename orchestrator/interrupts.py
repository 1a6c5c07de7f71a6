"""Signals a measuring command turns into a clean exit: cron's timeout and systemd's stop send
SIGTERM, a dropped SSH session SIGHUP. Each becomes SystemExit(128 + signal), so the query in
flight has its process group killed on the way out, samplers close, the manifest says
`interrupted`, and what is recorded stays recorded; the exit code tells a script which signal."""

from __future__ import annotations

import signal
import sys

EXITING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def exit_on_signals() -> None:
    for sig in EXITING_SIGNALS:
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
