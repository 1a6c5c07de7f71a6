"""`edgebench cron install|list|remove`: schedule unattended batches in the user's crontab.
The three take the same selectors: `--crontab-file FILE` (instead of the user's crontab) and
`--user USER` (FILE is a system crontab, /etc/cron.d/*; the lines that run as USER)."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator import cliopts

COLUMNS = ["name", "schedule", "user", "args", "log", "last"]


def selectors(fn):
    fn = click.option("--system", "old_system", is_flag=True, hidden=True)(fn)
    fn = click.option("--user", "user", default=None, metavar="USER",
                      help="FILE is a system crontab (/etc/cron.d/*): the lines that run as USER.")(fn)
    return click.option("--crontab-file", "crontab_file", type=click.Path(path_type=Path, dir_okay=False),
                        default=None, help="Edit this file instead of the user's crontab (crontab -l/-).")(fn)


def _is_system(user: str | None, old_system: bool) -> bool:
    if old_system:
        click.echo("warning: --system is now --user USER (that user's lines of a system crontab); --system will be "
                   "removed", err=True)
    return old_system or user is not None


@click.group(cls=cliopts.Group)
def cron():
    """Run batches from cron: each line runs `edgebench batch`, which resumes its own unfinished run."""


@cron.command(context_settings={"ignore_unknown_options": True})
@click.option("--schedule", required=True, help='Cron expression, e.g. "0 2 * * *" (02:00 daily) or @daily.')
@click.option("--name", default="nightly", show_default=True, help="Names the line, its log and its runs.")
@selectors
@click.argument("args", nargs=-1, type=click.UNPROCESSED, required=True)
def install(schedule, name, crontab_file, user, old_system, args):
    """Add (or replace) the line that runs `edgebench batch --name NAME -- ARGS`.

    ARGS are what follows `--`: `run` and its options, as `edgebench run` takes them."""
    from orchestrator import cron as lib
    from orchestrator.batchargs import parse_args

    if old_system and user is None:
        raise click.UsageError("a system crontab's line names the user it runs as: --user USER")
    _is_system(user, old_system)
    parse_args(list(args))  # a typo fails now, not at 2 a.m.
    line = lib.make_line(schedule, name, list(args), user=user)
    tab = lib.Crontab(crontab_file, system=bool(user))
    where = crontab_file or "the crontab of this user"
    if any(e.name == name and e.line == line for e in tab.entries()):
        # said apart so that a deploy tool (deploy/, Ansible) can tell a change from none
        click.echo(f"unchanged: batch {name!r} in {where} is already this line")
        return
    replaced = tab.add(line, name)
    tab.save()
    lib.log_path(name).parent.mkdir(parents=True, exist_ok=True)
    click.echo(f"{'replaced' if replaced else 'installed'} batch {name!r} in {where}: {' '.join(line.split()[:5])}")
    click.echo(f"log: {lib.log_path(name)}")


@cron.command("list")
@selectors
@cliopts.format_option(help="table for people; json: {\"batches\": [...]} (docs/cli.md); csv or md: one row per "
                            "line.")
def list_(crontab_file, user, old_system, fmt):
    """Edgebench's lines, with each log's last summary."""
    from orchestrator import cron as lib

    entries = [e for e in lib.Crontab(crontab_file, system=_is_system(user, old_system)).entries()
               if user is None or e.user == user]
    rows = [{"name": e.name, "schedule": e.schedule, "user": e.user,
             "args": e.command.split(" batch --name ", 1)[-1].split(" >> ", 1)[0],
             "log": str(lib.log_path(e.name)), "last": lib.last_line(lib.log_path(e.name))} for e in entries]

    def table():
        if not rows:
            click.echo("no edgebench batch is scheduled")
        for r in rows:
            as_user = f" as {r['user']}" if r["user"] else ""
            click.echo(f"{r['name']}: {r['schedule']}{as_user}  batch --name {r['args']}")
            click.echo(f"  log: {r['log']}")
            click.echo(f"  last: {r['last'] or '(has not run yet)'}")

    cliopts.echo_rows(fmt, COLUMNS, rows, doc={"batches": rows}, table=table)


@cron.command()
@click.argument("name", required=False)
@selectors
def remove(name, crontab_file, user, old_system):
    """Remove the line called NAME, or every edgebench line. Logs and runs stay."""
    from orchestrator import cron as lib
    from orchestrator.errors import UserError

    tab = lib.Crontab(crontab_file, system=_is_system(user, old_system))
    gone = tab.remove(name, user)
    if not gone:
        known = ", ".join(e.name for e in tab.entries()) or "none"
        raise UserError(f"no edgebench batch {'called ' + repr(name) + ' ' if name else ''}is scheduled "
                        f"(scheduled: {known})", fix="edgebench cron list")
    tab.save()
    for e in gone:
        click.echo(f"removed batch {e.name!r} ({e.schedule}); its log {lib.log_path(e.name)} stays")
