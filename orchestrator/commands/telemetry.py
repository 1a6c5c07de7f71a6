"""`edgebench telemetry`: board telemetry tools that need no run."""

from __future__ import annotations

import json

import click

from orchestrator import exitcodes
from orchestrator.sampling.tegrastats_format import parse_line

EXIT_MALFORMED = exitcodes.FAILED_QUERIES  # some lines could not be read


@click.group()
def telemetry():
    """Board telemetry tools (tegrastats logs)."""


@telemetry.command("parse-tegrastats")
@click.argument("file", type=click.File("r", encoding="utf-8", errors="replace"), default="-")
def parse_tegrastats(file):
    """Turn a tegrastats log (FILE, or stdin) into JSON lines, one object per line.

    A malformed line is reported on stderr as FILE:LINE: reason and skipped; the exit status is
    3 when some lines were malformed."""
    name = getattr(file, "name", "-")
    name = "<stdin>" if name in ("-", "<stdin>") else name
    bad = total = 0
    for n, line in enumerate(file, start=1):
        if not line.strip():
            continue
        total += 1
        try:
            row = parse_line(line)
        except ValueError as exc:
            bad += 1
            click.echo(f"{name}:{n}: {exc}", err=True)
            continue
        click.echo(json.dumps(row))
    if bad:
        click.echo(f"{name}: {bad} of {total} lines malformed", err=True)
        raise SystemExit(EXIT_MALFORMED)
