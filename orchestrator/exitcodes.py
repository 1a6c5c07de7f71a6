"""The exit codes of every edgebench command: one table, so a script (cron, CI) can tell what
happened from the number alone, and every command means the same thing by it."""

from __future__ import annotations

import signal

OK = 0
ERROR = 1  # an expected failure (errors.UserError): the message names the fix
USAGE = 2  # a malformed command line (click's own)
FAILED_QUERIES = 3  # the command finished, but some queries (or targets, or lines) failed
LOCKED = 4  # another measurement holds this machine (measurelock)
SIGNAL_BASE = 128  # stopped by signal N: 128 + N


def for_signal(signum: int) -> int:
    return SIGNAL_BASE + int(signum)


INTERRUPTED = for_signal(signal.SIGINT)  # 130: Ctrl-C


def signal_of(code: int) -> int | None:
    """The signal number a `128 + N` exit code stands for, else None."""
    return code - SIGNAL_BASE if isinstance(code, int) and code > SIGNAL_BASE else None


HELP = f"""\b
Exit codes: {OK} every query ok; {ERROR} an error before or outside the queries (the message says the
fix); {USAGE} a malformed command line; {FAILED_QUERIES} the run finished but some queries failed; {LOCKED} another
measurement holds this machine; {SIGNAL_BASE}+N stopped by signal N ({INTERRUPTED} Ctrl-C,
{for_signal(signal.SIGTERM)} SIGTERM, {for_signal(signal.SIGHUP)} SIGHUP)."""
