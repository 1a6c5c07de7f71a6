"""`edgebench runs list|prune`: the run folders under reports/, and disk housekeeping."""

from __future__ import annotations

import click

from orchestrator import cliopts

DIR_OPTION = cliopts.reports_dir_option("The folder holding the runs (default: reports/).", alias_of=("--dir",))
COLUMNS = ["folder", "path", "created_at", "status", "done", "total", "size_bytes", "batch"]


@click.group(cls=cliopts.Group)
def runs():
    """The run folders: list them, delete old ones."""


@runs.command("list")
@DIR_OPTION
@cliopts.format_option(help="table for people; json: {\"reports_dir\", \"runs\": [...]} (docs/cli.md); csv or md: "
                            "one row per run.")
def list_(reports_dir, fmt):
    """Each run: folder, date, status, measurements done/planned, size. Oldest first."""
    from orchestrator import paths
    from orchestrator.runs import human_size, list_runs

    reports = reports_dir or paths.reports_dir()
    unreadable: list[str] = []
    found = list_runs(reports, unreadable)
    for line in unreadable:
        click.echo(f"warning: left out, cannot be read: {line}", err=True)
    rows = [{"folder": r.path.name, "path": str(r.path), "created_at": r.created_at, "status": r.status,
             "done": r.done, "total": r.total, "size_bytes": r.size_bytes, "batch": r.batch} for r in found]

    def table():
        if not found:
            click.echo(f"no runs in {reports}")
            return
        click.echo(f"{'folder':<28} {'date':<25} {'status':<12} {'done':>11} {'size':>9}  batch")
        for r in found:
            done = f"{r.done}/{r.total if r.total is not None else '?'}"
            click.echo(f"{r.path.name:<28} {r.created_at:<25} {r.status:<12} {done:>11} "
                       f"{human_size(r.size_bytes):>9}  {r.batch or ''}".rstrip())
        click.echo(f"{len(found)} runs, {human_size(sum(r.size_bytes for r in found))} in {reports}")

    cliopts.echo_rows(fmt, COLUMNS, rows, doc={"reports_dir": str(reports), "runs": rows}, table=table)


@runs.command()
@click.option("--keep", type=click.IntRange(min=0), required=True, help="How many of the newest runs to keep.")
@click.option("--dry-run", is_flag=True, help="Say what would be deleted, delete nothing.")
@DIR_OPTION
def prune(keep, dry_run, reports_dir):
    """Delete all but the KEEP newest runs; a run being measured is never deleted."""
    from orchestrator import paths
    from orchestrator.runs import human_size
    from orchestrator.runs import prune as do_prune

    reports = reports_dir or paths.reports_dir()
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
