"""`edgebench batch`: what a crontab line runs. Finishes this batch's unfinished run before
starting a new one, and ends with one summary line in reports/cron/NAME.log."""

from __future__ import annotations

import sys

import click

from orchestrator.errors import UserError

EXIT_HELP = """\b
Exit codes: 0 every query ok; 1 an error, a full disk included (the message names the space
needed); 2 a malformed command line; 3 some queries failed; 4 another measurement holds this
machine (the batch did not run); 128+N stopped by signal N (143 SIGTERM). The next batch of
the same name and arguments finishes what a stopped one left."""


def parse_args(args: list[str]) -> tuple[str, dict]:
    """(kind, options) of what follows `--`: `run` and its options. Raises for a typo, so that
    `cron install` refuses it at once."""
    if not args:
        raise click.UsageError("say what the batch runs after --, e.g. -- run --limit 2")
    kind, rest = args[0], list(args[1:])
    if kind not in OPENERS:
        raise click.UsageError(f"a batch runs `run` or `experiment` (their options follow), not {kind!r}: "
                               "-- run --limit 2")
    if kind == "run":
        from orchestrator.commands.run import run as command
    else:
        from orchestrator.commands.experiment import experiment as command
    params = command.make_context(f"batch -- {kind}", rest).params
    if params.get("resume") or params.get("force"):
        raise UserError("a batch resumes its own unfinished run by itself; --resume and --force do not apply",
                        fix="drop --resume/--force (--fresh before -- starts a new run instead)")
    if kind == "experiment" and (params.get("name") == "all" or params.get("plan_only") or params.get("new")
                                 or not (params.get("name") or params.get("plan_file"))):
        raise UserError("a batch runs one experiment plan (a name from workloads/plans/, or --plan FILE)",
                        fix="-- experiment granular (one batch per plan; `experiment all` finishes itself when "
                            "run again)")
    if kind == "experiment":
        from orchestrator.experiments import plans

        plans.load(params["plan_file"] or plans.find(params["name"]))  # a typo fails at install, not at night
    return kind, params


def _resume_own(found, name: str, args: list[str], reopen):
    """`reopen()` this batch's unfinished folder; a refused resume (binary, model or machine
    changed) names --fresh, which leaves that folder as it is."""
    try:
        return reopen()
    except UserError as exc:
        raise UserError(exc.message, fix=f"restore what changed, or edgebench batch --name {name} --fresh -- "
                                         f"{' '.join(args)} to start a new run ({found} stays)") from None


def _open_run(name: str, args: list[str], params: dict, fresh: bool):
    """(session, resumed): this batch's unfinished run, else a new one that records the batch."""
    from orchestrator.batch import find_unfinished
    from orchestrator.commands.run import config_from_options
    from orchestrator.session import Session

    cfg = config_from_options(**params)
    found = None if fresh else find_unfinished(cfg.out_dir, name, args)
    if found:
        return _resume_own(found, name, args, lambda: Session.resume(found, log=click.echo)), True
    return Session.create(cfg, warmup=params["warmup"], repeat=params["repeat"], log=click.echo,
                          extra_manifest={"batch": {"name": name, "args": list(args)}}), False


def _open_experiment(name: str, args: list[str], params: dict, fresh: bool):
    """(session, resumed) for one experiment plan, with the plan's hooks (gating, discarded
    readings) on a resumed run as on a new one."""
    from orchestrator.batch import find_unfinished
    from orchestrator.commands.experiment import _base_config, _gating
    from orchestrator.experiments import plans
    from orchestrator.experiments import run as xrun

    base = _base_config(params["workload"], params["model"], params["binary"], params["out"], params["threads"],
                        params["ignore_eos"], params["memory_check"], params["idle_window_s"])
    found = None if fresh else find_unfinished(base.out_dir, name, args)
    if found:
        return _resume_own(found, name, args, lambda: xrun.resume(found, log=click.echo)), True
    plan = plans.load(params["plan_file"] or plans.find(params["name"]))
    res = xrun.resolve(plan, base, repeat=params["repeat"])
    gating = _gating(params["cooldown"], params["max_temp"], params["temp_timeout"])
    return xrun.start(res, gating=gating, log=click.echo,
                      extra_manifest={"batch": {"name": name, "args": list(args)}}), False


# kind -> opener(name, args, params, fresh) -> (Session, resumed)
OPENERS = {"run": _open_run, "experiment": _open_experiment}


@click.command(context_settings={"ignore_unknown_options": True}, epilog=EXIT_HELP)
@click.option("--name", required=True, help="The batch's name: its log, and how it finds its unfinished run.")
@click.option("--fresh", is_flag=True, help="Start a new run even if this batch left one unfinished.")
@click.argument("args", nargs=-1, type=click.UNPROCESSED, required=True)
def batch(name, fresh, args):
    """Run ARGS (`run` and its options, after --) unattended: resume first, summarise last."""
    from orchestrator import batch as lib
    from orchestrator.commands.run import finish, line_for
    from orchestrator.cron import check_name, log_path
    from orchestrator.diskspace import RAW_BASE_BYTES, disk_full, is_enospc
    from orchestrator.interrupts import exit_on_signals
    from orchestrator.measurelock import LockHeld, measuring

    check_name(name)
    args = list(args)
    kind, params = parse_args(args)
    log = log_path(name)
    exit_on_signals()
    session, before, code, note = None, 0, 1, None
    try:
        with measuring(log=click.echo) as lock:
            session, resumed = OPENERS[kind](name, args, params, fresh)
            lock.set_run_dir(session.store.dir)
            before, todo = len(session.store.read_queries()), len(session.pending())
            click.echo(f"batch {name}: {'resuming' if resumed else 'new run'} {session.store.dir}, {todo} of "
                       f"{len(session.items)} measurements to go")
            # the session checks the disk before every query (DiskFull, a UserError, below)
            result = session.run(lambda record, i, total: click.echo(line_for(record, i, total)))
            if "experiment" in session.store.manifest:
                from orchestrator.experiments.run import finish_results

                finish_results(session)  # the plan's 95% intervals and comparisons, as `experiment` records them
            try:
                finish(session, result)
            except SystemExit as done:
                code = done.code
    except LockHeld as exc:
        code, note = exc.exit_code, exc.message
    except UserError as exc:
        code, note = exc.exit_code, _error(exc)
    except OSError as exc:
        if not is_enospc(exc):
            raise
        # a write outside a session's queries (opening the run, the experiment's results)
        full = session.disk_full(session.pending()) if session else disk_full(
            None, 0, params.get("out") or log.parent.parent, "run the batch again", RAW_BASE_BYTES)
        code, note = full.exit_code, _error(full)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
        note = f"stopped by signal {code - 128}; the next batch finishes this run" if code > 128 else None
    except KeyboardInterrupt:
        code, note = 130, "stopped by Ctrl-C; the next batch finishes this run"
    records = session.store.read_queries() if session else None
    line = lib.summary_line(name, " ".join(args), code, run_dir=session.store.dir if session else None,
                            records=records, ran=len(records) - before if records is not None else None,
                            total=len(session.items) if session else None, note=note)
    stream = sys.stdout if code in (0, 3) else sys.stderr
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
