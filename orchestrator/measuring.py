"""The one wrapper of a measuring command (run, experiment, bench, batch): it holds the machine's
measurement lock, turns SIGTERM/SIGHUP into a clean exit (interrupts.py), answers Ctrl-C with the
command that finishes what was recorded, and ends with the exit code that says what happened
(exitcodes.py)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from orchestrator import exitcodes


class Measurement:
    """What a measuring command holds while it measures. `measures(folder)` names the folder being
    measured: the lock's holder file shows it, and Ctrl-C's hint says how to finish it."""

    def __init__(self, lock, finish: str | None, echo=click.echo):
        self.lock = lock
        self.finish = finish
        self.echo = echo  # where the command's progress lines go
        self.folder: Path | None = None

    def measures(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.lock.set_run_dir(folder)

    def hint(self) -> str:
        if self.finish is None or self.folder is None:
            return "what was recorded stays"
        return f"what was recorded stays; finish it with {self.finish.format(folder=self.folder)}"


@contextlib.contextmanager
def measuring(finish: str | None = None, log=click.echo) -> Iterator[Measurement]:
    """Hold the lock (LockHeld, exit 4, when another measurement has it) for the body; Ctrl-C
    exits 130 saying how to finish what was recorded: `finish`, e.g. "edgebench run --resume {folder}"
    (None: bench, whose scratch runs are not kept)."""
    from orchestrator.interrupts import exit_on_signals
    from orchestrator.measurelock import measuring as lock

    exit_on_signals()
    held = None
    try:
        with lock(log=log) as taken:
            held = Measurement(taken, finish, log)
            yield held
    except KeyboardInterrupt:
        click.echo(f"interrupted (Ctrl-C): {held.hint() if held else 'nothing was recorded'}", err=True)
        sys.exit(exitcodes.INTERRUPTED)


def exit_for(n_failed: int, n_total: int | None = None, what: str = "query attempts") -> None:
    """Exit 0, or 3 when something failed, saying how many."""
    if n_failed:
        of = f" of {n_total}" if n_total is not None else ""
        click.echo(f"{n_failed}{of} {what} failed (exit {exitcodes.FAILED_QUERIES})", err=True)
        sys.exit(exitcodes.FAILED_QUERIES)
    sys.exit(exitcodes.OK)
