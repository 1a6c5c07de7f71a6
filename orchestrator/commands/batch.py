"""`edgebench batch`: what a crontab line runs. Finishes this batch's unfinished run before
starting a new one, and ends with one summary line in reports/cron/NAME.log."""

from __future__ import annotations

import sys

import click

from orchestrator import cliopts, exitcodes
from orchestrator.errors import UserError

EXIT_HELP = f"""\b
Exit codes: {exitcodes.OK} every query ok; {exitcodes.ERROR} an error, a full disk included (the message names the
space needed); {exitcodes.USAGE} a malformed command line; {exitcodes.FAILED_QUERIES} some queries failed;
{exitcodes.LOCKED} another measurement holds this machine (the batch did not run); {exitcodes.SIGNAL_BASE}+N stopped
by signal N (143 SIGTERM). The next batch of the same name and arguments finishes what a stopped one left."""


@click.command(cls=cliopts.Command, context_settings={"ignore_unknown_options": True}, epilog=EXIT_HELP)
@click.option("--name", required=True, help="The batch's name: its log, and how it finds its unfinished run.")
@click.option("--fresh", is_flag=True, help="Start a new run even if this batch left one unfinished.")
@click.argument("args", nargs=-1, type=click.UNPROCESSED, required=True)
def batch(name, fresh, args):
    """Run ARGS (`run` and its options, after --) unattended: resume first, summarise last."""
    from orchestrator import batch as lib
    from orchestrator.batchargs import parse_args
    from orchestrator.cron import check_name, log_path
    from orchestrator.diskspace import RAW_BASE_BYTES, disk_full, is_enospc
    from orchestrator.measurelock import LockHeld
    from orchestrator.measuring import measuring
    from orchestrator.runprint import line_for, show

    check_name(name)
    args = list(args)
    kind, params = parse_args(args)
    log = log_path(name)
    session, before, code, note = None, 0, exitcodes.ERROR, None
    try:
        with measuring("the next batch of this name and these arguments", log=click.echo) as m:
            session, resumed = lib.OPENERS[kind](name, args, params, fresh, click.echo)
            m.measures(session.store.dir)
            before, todo = len(session.store.read_queries()), len(session.pending())
            click.echo(f"batch {name}: {'resuming' if resumed else 'new run'} {session.store.dir}, {todo} of "
                       f"{len(session.items)} measurements to go")
            # the session checks the disk before every query (DiskFull, a UserError, below)
            result = session.run(lambda record, i, total: click.echo(line_for(record, i, total)))
            if "experiment" in session.store.manifest:
                from orchestrator.experiments.runner import finish_results

                finish_results(session)  # the plan's 95% intervals and comparisons, as `experiment` records them
            show(session, result)
            code = result.exit_code
            if result.n_failed:
                click.echo(f"{result.n_failed} of {len(result.records)} query attempts failed (exit {code})", err=True)
    except LockHeld as exc:
        code, note = exc.exit_code, exc.message
    except UserError as exc:
        code, note = exc.exit_code, _error(exc)
    except OSError as exc:
        if not is_enospc(exc):
            raise
        # a write outside a session's queries (opening the run, the experiment's results)
        full = session.disk_full(session.pending()) if session else disk_full(
            None, 0, params.get("reports_dir") or log.parent.parent, "run the batch again", RAW_BASE_BYTES)
        code, note = full.exit_code, _error(full)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else exitcodes.ERROR
        signum = exitcodes.signal_of(code)
        note = f"stopped by signal {signum}; the next batch finishes this run" if signum else None
    records = session.store.read_queries() if session else None
    line = lib.summary_line(name, " ".join(args), code, run_dir=session.store.dir if session else None,
                            records=records, ran=len(records) - before if records is not None else None,
                            total=len(session.items) if session else None, note=note)
    stream = sys.stdout if code in (exitcodes.OK, exitcodes.FAILED_QUERIES) else sys.stderr
    sys.stdout.flush()  # the summary must be the log's last line (cron mails `tail -n 1` on failure)
    click.echo(line, err=stream is sys.stderr)
    if not lib.same_file(stream, log):
        try:
            lib.append_log(log, line)
        except OSError as exc:  # the log's disk may be the full one: the line was printed all the same
            click.echo(f"warning: could not append to {log}: {exc}", err=True)
    sys.exit(code)


def _error(exc: UserError) -> str:
    click.echo(f"error: {exc.format_message()}", err=True)
    return f"error: {exc.message}" + (f" (fix: {exc.fix})" if exc.fix else "")
