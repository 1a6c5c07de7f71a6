"""`edgebench experiment`: run a plan (the study's, or a user's own), or all five of the
study's into one resumable experiment folder."""

from __future__ import annotations

import json
from pathlib import Path

import click

from orchestrator import cliopts, exitcodes
from orchestrator.cliopts import run_default


def _run_part(session, fmt: str, docs: list, part: str | None = None):
    """Run one plan's session; its summary is printed now (table) or kept in `docs` for the one
    object printed at the end (a machine format)."""
    from orchestrator.experiments.runner import finish_results
    from orchestrator.runprint import progress_echo, run_with_progress, show_results, summary

    echo = progress_echo(fmt)
    pending = len(session.pending())
    echo(f"{'part ' + part if part else 'experiment'} {session.store.dir}: {pending} of "
         f"{len(session.items)} measurements to run")
    result = run_with_progress(session, echo)
    res = finish_results(session)
    table, doc = summary(session, result, {"part": part, "experiment_results": res} if part else
                         {"experiment_results": res})
    if fmt == "table":
        click.echo(table)
    docs.append(doc)
    show_results(res, echo)
    return result


def _finish(results: list, docs: list, fmt: str, exp_dir: Path | None = None) -> None:
    """Print the machine format's one object (docs/cli.md), then exit 0, or 3 when a query failed."""
    from orchestrator.measuring import exit_for
    from orchestrator.runprint import COLUMNS

    if fmt != "table" and docs:
        if exp_dir is None and len(docs) == 1:
            cliopts.echo_rows(fmt, COLUMNS, docs[0]["categories"], doc=docs[0])
        else:
            rows = [{"part": d.get("part"), **row} for d in docs for row in d["categories"]]
            cliopts.echo_rows(fmt, ["part", *COLUMNS], rows, doc={"experiment_dir": str(exp_dir), "parts": docs})
    exit_for(sum(r.n_failed for r in results))


@click.command(cls=cliopts.Command, epilog=exitcodes.HELP)
@click.argument("name", required=False)
@click.option("--plan", "plan_file", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="Run your own plan file (YAML or JSON; copy one from orchestrator/data/plans/).")
@cliopts.target_options
@cliopts.reports_dir_option("Folder that receives the run or experiment folder (default: reports/).")
@click.option("--plan-only", is_flag=True, help="Print the resolved plan as JSON (queries and why) and run nothing.")
@click.option("--repeat", type=click.IntRange(min=1), default=None,
              help="Measured repetitions per item, overriding the plan's; results get 95% confidence intervals.")
@click.option("--cooldown", type=click.FloatRange(min=0), default=0.0, help="Seconds to wait between items.")
@click.option("--max-temp", type=float, default=None,
              help="Before each item, wait until every thermal zone reads at most this many degrees C.")
@click.option("--temp-timeout", type=click.FloatRange(min=0), default=600.0, show_default=True,
              help="With --max-temp: measure anyway after waiting this long (recorded).")
@click.option("--threads", "-t", type=click.IntRange(min=1), default=None, help="main -t (default: all cores).")
@click.option("--ignore-eos/--stop-at-eos", default=None,
              help="Default: --ignore-eos for a synthetic twin (its text is noise), stop at EOS otherwise.")
@click.option("--no-memory-check", "memory_check", flag_value=False, default=None,
              help="Run a model larger than the available memory anyway.")
@click.option("--idle-window", "idle_window_s", type=click.FloatRange(min=0), default=None,
              help=run_default("Seconds the GPU/board sampler watches the idle board before each plan's first "
                               "query, for energy net of idle power; 0 skips it.", "idle_window_s"))
@click.option("--resume", type=click.Path(path_type=Path, file_okay=False, exists=True), default=None,
              help="Finish an interrupted experiment (its folder) or plan run.")
@click.option("--force", is_flag=True, help="With --resume (or all/engines, finishing an unfinished one): resume "
                                           "although binary, model or machine changed.")
@click.option("--new", is_flag=True, help="experiment all/engines: start afresh instead of finishing an unfinished "
                                         "one.")
@cliopts.format_option()
@click.pass_context
def experiment(ctx, name, plan_file, workload, model, binary, engine, reports_dir, plan_only, repeat, cooldown,
               max_temp, temp_timeout, threads, ignore_eos, memory_check, idle_window_s, resume, force, new, fmt):
    """Run an experiment plan: NAME is one of the shipped plans (orchestrator/data/plans/: categories,
    granular, prompt-sweep, output-sweep, matched-pair, ngl-sweep), `all` for the study's five in one folder,
    or `engines` for the categories plan answered by main and by its resident server, side by side."""
    from orchestrator import runconfig
    from orchestrator.experiments import plans
    from orchestrator.experiments import runner as xrun
    from orchestrator.resumepolicy import refuse_shaping

    if force and not resume and name not in plans.SUITES:
        raise click.UsageError("--force only applies to --resume (or to `all` or `engines`, which finish an unfinished "
                               "one)")
    if resume:
        if name or plan_file:
            raise click.UsageError("--resume takes the folder alone: the plan is recorded in it")
        refuse_shaping(ctx, "edgebench experiment", resume)
        return _resume(resume, force, fmt)
    if bool(name) == bool(plan_file):
        raise click.UsageError(f"name one experiment ({', '.join(plans.builtin_names() + list(plans.SUITES))}) or "
                               "--plan FILE")
    base = runconfig.from_options(ctx.params)
    gating = xrun.gating(cooldown, max_temp, temp_timeout)
    if name in plans.SUITES:
        return _all(name, base, repeat, gating, plan_only, new, force, fmt)
    plan = plans.load(plan_file or plans.find(name))
    res = xrun.resolve(plan, base, repeat=repeat)
    if plan_only:
        click.echo(json.dumps(res.summary(), indent=2))
        xrun.check_runnable(res)
        return
    xrun.check_runnable(res)
    with _measuring(fmt) as m:
        session = xrun.start(res, gating=gating, log=m.echo)
        m.measures(session.store.dir)
        docs: list = []
        _finish([_run_part(session, fmt, docs)], docs, fmt)


def _measuring(fmt: str):
    from orchestrator.measuring import measuring
    from orchestrator.runprint import progress_echo

    m = measuring("edgebench experiment --resume {folder}", log=progress_echo(fmt))
    return m


def _all(suite, base, repeat, gating, plan_only, new, force, fmt):
    from orchestrator.experiments import discover
    from orchestrator.experiments import runner as xrun

    if plan_only:
        parts = [xrun.resolve(p, base, repeat=repeat).summary() for p in xrun.suite_plans(suite)]
        click.echo(json.dumps({"experiment": suite, "parts": parts}, indent=2))
        return
    with _measuring(fmt) as m:
        found = discover.Found(None) if new else discover.to_finish(base, repeat, gating, suite)
        if found.note:
            m.echo(found.note)
        exp_dir = found.folder
        if exp_dir is None:
            exp_dir, resolved = xrun.create_all(base, repeat=repeat, gating=gating, suite=suite)
            m.echo(f"experiment {exp_dir}: parts {', '.join(r.plan.name for r in resolved)}")
        _run_all(xrun, exp_dir, force, m, fmt)


def _run_all(xrun, exp_dir, force, m, fmt):
    m.measures(exp_dir)  # Ctrl-C names the experiment's folder, not the part's
    docs: list = []
    results = xrun.run_all(exp_dir, run_session=lambda s, part: _run_part(s, fmt, docs, part), force=force,
                           log=m.echo, on_lock=m.lock.set_run_dir)
    _finish(results, docs, fmt, exp_dir)


def _resume(folder: Path, force: bool, fmt: str):
    from orchestrator.experiments import index
    from orchestrator.experiments import runner as xrun

    with _measuring(fmt) as m:
        if index.is_experiment(folder):
            return _run_all(xrun, folder, force, m, fmt)
        session = xrun.resume(folder, force=force, log=m.echo)
        m.measures(folder)
        docs: list = []
        _finish([_run_part(session, fmt, docs)], docs, fmt)
