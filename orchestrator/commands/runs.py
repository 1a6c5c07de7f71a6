"""`edgebench runs list|prune`: the run folders under reports/, and disk housekeeping."""

from __future__ import annotations

from pathlib import Path

import click

DIR_OPTION = click.option("--dir", "reports", type=click.Path(path_type=Path, file_okay=False), default=None,
                          help="The folder holding the runs (default: reports/).")


@click.group()
def runs():
    """The run folders: list them, delete old ones."""


@runs.command("list")
@DIR_OPTION
def list_(reports):
    """Each run: folder, date, status, measurements done/planned, size. Oldest first."""
    from orchestrator import paths
    from orchestrator.runs import human_size, list_runs

    reports = reports or paths.reports_dir()
    unreadable: list[str] = []
    found = list_runs(reports, unreadable)
    for line in unreadable:
        click.echo(f"warning: left out, cannot be read: {line}", err=True)
    if not found:
        click.echo(f"no runs in {reports}")
        return
    click.echo(f"{'folder':<28} {'date':<25} {'status':<12} {'done':>11} {'size':>9}  batch")
    for r in found:
        done = f"{r.done}/{r.total if r.total is not None else '?'}"
        click.echo(f"{r.path.name:<28} {r.created_at:<25} {r.status:<12} {done:>11} {human_size(r.size_bytes):>9}  "
                   f"{r.batch or ''}".rstrip())
    total = sum(r.size_bytes for r in found)
    click.echo(f"{len(found)} runs, {human_size(total)} in {reports}")


@runs.command()
@click.option("--keep", type=click.IntRange(min=0), required=True, help="How many of the newest runs to keep.")
@click.option("--dry-run", is_flag=True, help="Say what would be deleted, delete nothing.")
@DIR_OPTION
def prune(keep, dry_run, reports):
    """Delete all but the KEEP newest runs; a run being measured is never deleted."""
    from orchestrator import paths
    from orchestrator.runs import human_size
    from orchestrator.runs import prune as do_prune

    reports = reports or paths.reports_dir()
    removed, spared, notes = do_prune(reports, keep, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    for r in removed:
        click.echo(f"{verb} {r.path.name} ({r.status}, {r.done}/{r.total if r.total is not None else '?'}, "
                   f"{human_size(r.size_bytes)})")
    for r in spared:
        click.echo(f"kept {r.path.name}: it is being measured now")
    for note in notes:
        click.echo(note, err=True)
    click.echo(f"{verb} {len(removed)} runs, {human_size(sum(r.size_bytes for r in removed))}")
