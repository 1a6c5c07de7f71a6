"""`edgebench cron install|list|remove`: schedule unattended batches in the user's crontab."""

from __future__ import annotations

from pathlib import Path

import click

FILE_OPTION = click.option("--crontab-file", "crontab_file", type=click.Path(path_type=Path, dir_okay=False),
                           default=None, help="Edit this file instead of the user's crontab (crontab -l/-).")
USER_OPTION = click.option("--user", "user", default=None,
                           help="With --crontab-file of a system crontab (/etc/cron.d/*): the user field.")


@click.group()
def cron():
    """Run batches from cron: each line runs `edgebench batch`, which resumes its own unfinished run."""


@cron.command(context_settings={"ignore_unknown_options": True})
@click.option("--schedule", required=True, help='Cron expression, e.g. "0 2 * * *" (02:00 daily) or @daily.')
@click.option("--name", default="nightly", show_default=True, help="Names the line, its log and its runs.")
@FILE_OPTION
@USER_OPTION
@click.argument("args", nargs=-1, type=click.UNPROCESSED, required=True)
def install(schedule, name, crontab_file, user, args):
    """Add (or replace) the line that runs `edgebench batch --name NAME -- ARGS`.

    ARGS are what follows `--`: `run` and its options, as `edgebench run` takes them."""
    from orchestrator import cron as lib
    from orchestrator.commands.batch import parse_args

    parse_args(list(args))  # a typo fails now, not at 2 a.m.
    line = lib.make_line(schedule, name, list(args), user=user)
    tab = lib.Crontab(crontab_file, system=bool(user))
    replaced = tab.add(line, name)
    tab.save()
    lib.log_path(name).parent.mkdir(parents=True, exist_ok=True)
    where = crontab_file or "the crontab of this user"
    click.echo(f"{'replaced' if replaced else 'installed'} batch {name!r} in {where}: {' '.join(line.split()[:5])}")
    click.echo(f"log: {lib.log_path(name)}")


@cron.command("list")
@FILE_OPTION
@click.option("--system", is_flag=True, help="The file is a system crontab (a user field after the schedule).")
def list_(crontab_file, system):
    """Edgebench's lines, with each log's last summary."""
    from orchestrator import cron as lib

    entries = lib.Crontab(crontab_file, system=system).entries()
    if not entries:
        click.echo("no edgebench batch is scheduled")
        return
    for e in entries:
        args = e.command.split(" batch --name ", 1)[-1].split(" >> ", 1)[0]
        click.echo(f"{e.name}: {e.schedule}{f' as {e.user}' if e.user else ''}  batch --name {args}")
        click.echo(f"  log: {lib.log_path(e.name)}")
        click.echo(f"  last: {lib.last_line(lib.log_path(e.name)) or '(has not run yet)'}")


@cron.command()
@click.argument("name", required=False)
@FILE_OPTION
@click.option("--system", is_flag=True, help="The file is a system crontab (a user field after the schedule).")
def remove(name, crontab_file, system):
    """Remove the line called NAME, or every edgebench line. Logs and runs stay."""
    from orchestrator import cron as lib
    from orchestrator.errors import UserError

    tab = lib.Crontab(crontab_file, system=system)
    gone = tab.remove(name)
    if not gone:
        known = ", ".join(e.name for e in tab.entries()) or "none"
        raise UserError(f"no edgebench batch {'called ' + repr(name) + ' ' if name else ''}is scheduled "
                        f"(scheduled: {known})", fix="edgebench cron list")
    tab.save()
    for e in gone:
        click.echo(f"removed batch {e.name!r} ({e.schedule}); its log {lib.log_path(e.name)} stays")
