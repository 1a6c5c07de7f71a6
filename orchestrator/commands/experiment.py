"""`edgebench experiment`: run a plan (the study's, or a user's own), or all five of the
study's into one resumable experiment folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from orchestrator.commands.run import EXIT_CODES_HELP


def _base_config(workload, model, binary, out, threads, ignore_eos, memory_check, idle_window_s=2.0):
    from orchestrator import paths
    from orchestrator import session as sess
    from orchestrator.config import RunConfig

    # absolute paths: the manifest is what a resume reads back, maybe from another directory
    return RunConfig(binary=(binary or sess.default_binary()).absolute(),
                     model=(model or sess.default_model()).absolute(),
                     workload=(workload or sess.default_workload()).absolute(),
                     out_dir=(out or paths.reports_dir()).absolute(),
                     **({"threads": threads} if threads else {}), ignore_eos=ignore_eos, memory_check=memory_check,
                     idle_window_s=idle_window_s)


def _gating(cooldown, max_temp, temp_timeout) -> dict | None:
    if not cooldown and max_temp is None:
        return None
    from orchestrator.experiments.thermal import Gate

    Gate(cooldown, max_temp, temp_timeout)  # refuses --max-temp without thermal zones, before any run
    return {"cooldown_s": cooldown, "max_temp_c": max_temp, "timeout_s": temp_timeout}


def _fmt(c: dict, scale=1000.0, unit="ms") -> str:
    if c["mean"] is None:
        return "-"
    if c["ci_half"] is None:
        return f"{c['mean'] * scale:.1f}{unit}"
    return f"{c['mean'] * scale:.1f}±{c['ci_half'] * scale:.1f}{unit}"


def show_results(res: dict) -> None:
    """95% intervals when an item was repeated, and a matched pair's comparison."""
    rows = [r for r in res["ci95"] if r["n"] > 1]
    if rows:
        click.echo("\n95% confidence intervals (t-distribution) over the measured repetitions:")
        for r in rows:
            vid = f" [{r['variant_id']}]" if r["variant_id"] else ""
            click.echo(f"  {r['query_id']}{vid} n={r['n']} ttft={_fmt(r['ttft_s'])} tpot={_fmt(r['tpot_s'])} "
                       f"total={_fmt(r['total_s'], 1, 's')}")
    cmp_ = res.get("compare")
    if cmp_:
        key = cmp_["figure"]
        sides = " vs ".join(f"{s['category']} {s['query_id']} ({s['prompt_tokens']} prompt tokens, "
                            f"{'/'.join(map(str, s.get('output_tokens') or ['-']))} output tokens) "
                            f"{_fmt(s[key], 1, 's')}" for s in cmp_["sides"])
        click.echo(f"\nmatched pair, {key}: {sides}")
        if cmp_["difference"] is not None:
            ci = (f" (95% CI {cmp_['ci_lo']:+.3f} to {cmp_['ci_hi']:+.3f} s)" if cmp_["ci_lo"] is not None
                  else " (no interval: a side ran once)")
            click.echo(f"  difference {cmp_['difference']:+.3f} s{ci}, ratio {cmp_['ratio']:.3f}")


def _run_part(session, part: str | None = None):
    from orchestrator.commands.run import run_with_progress, show
    from orchestrator.experiments.run import finish_results

    pending = len(session.pending())
    click.echo(f"{'part ' + part if part else 'experiment'} {session.store.dir}: {pending} of "
               f"{len(session.items)} measurements to run")
    result = run_with_progress(session)
    show(session, result)
    show_results(finish_results(session))
    return result


def _exit(results: list) -> None:
    failed = sum(r.n_failed for r in results)
    if failed:
        click.echo(f"{failed} query attempts failed (exit 3)", err=True)
    sys.exit(3 if failed else 0)


@click.command(epilog=EXIT_CODES_HELP)
@click.argument("name", required=False)
@click.option("--plan", "plan_file", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="Run your own plan file (YAML or JSON; copy one from orchestrator/data/plans/).")
@click.option("--workload", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="JSONL workload (default: the 50 shipped queries, orchestrator/data/workloads/default.jsonl).")
@click.option("--model", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="GGUF model (default: the one bootstrap set up).")
@click.option("--binary", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="llama.cpp main (default: build/llama.cpp/main).")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Folder that receives the run or experiment folder (default: reports/).")
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
@click.option("--no-memory-check", "memory_check", flag_value=False, default=True,
              help="Run a model larger than the available memory anyway.")
@click.option("--idle-window", "idle_window_s", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="Seconds the GPU/board sampler watches the idle board before each plan's first query, for "
                   "energy net of idle power; 0 skips it.")
@click.option("--resume", type=click.Path(path_type=Path, file_okay=False, exists=True), default=None,
              help="Finish an interrupted experiment (its folder) or plan run.")
@click.option("--force", is_flag=True, help="With --resume: resume although binary, model or machine changed.")
@click.option("--new", is_flag=True, help="experiment all: start afresh instead of finishing an unfinished one.")
def experiment(name, plan_file, workload, model, binary, out, plan_only, repeat, cooldown, max_temp, temp_timeout,
               threads, ignore_eos, memory_check, idle_window_s, resume, force, new):
    """Run an experiment plan: NAME is one of the shipped plans (orchestrator/data/plans/: categories,
    granular, prompt-sweep, output-sweep, matched-pair, ngl-sweep), or `all` for the study's five in one folder."""
    from orchestrator.experiments import plans
    from orchestrator.experiments import run as xrun

    if resume:
        if name or plan_file or plan_only:
            raise click.UsageError("--resume takes the folder alone: the plan is recorded in it")
        return _resume(resume, force)
    if bool(name) == bool(plan_file):
        raise click.UsageError(f"name one experiment ({', '.join(plans.builtin_names() + ['all'])}) or --plan FILE")
    base = _base_config(workload, model, binary, out, threads, ignore_eos, memory_check, idle_window_s)
    gating = _gating(cooldown, max_temp, temp_timeout)
    if name == "all":
        return _all(base, repeat, gating, plan_only, new, force)
    plan = plans.load(plan_file or plans.find(name))
    res = xrun.resolve(plan, base, repeat=repeat)
    if plan_only:
        click.echo(json.dumps(res.summary(), indent=2))
        xrun.check_runnable(res)
        return
    xrun.check_runnable(res)
    with _measuring() as lock:
        session = xrun.start(res, gating=gating, log=click.echo)
        lock.set_run_dir(session.store.dir)
        _exit([_interruptible(lambda: _run_part(session), session.store.dir)])


def _measuring():
    from orchestrator.interrupts import exit_on_signals
    from orchestrator.measurelock import measuring

    exit_on_signals()
    return measuring(log=click.echo)


def _all(base, repeat, gating, plan_only, new, force):
    from orchestrator.experiments import index, plans
    from orchestrator.experiments import run as xrun

    if plan_only:
        parts = [xrun.resolve(plans.load(plans.find(n)), base, repeat=repeat).summary() for n in plans.STUDY]
        click.echo(json.dumps({"experiment": "all", "parts": parts}, indent=2))
        return
    with _measuring() as lock:
        found = None if new else index.find_unfinished(base.out_dir)
        if found:
            stored = index.read(found)["config"]
            if any(stored[k] != str(getattr(base, k)) for k in ("binary", "model", "workload")):
                click.echo(f"{found} is unfinished but used another binary, model or workload; starting a new one")
                found = None
        if found:
            click.echo(f"finishing the unfinished experiment {found} (--new starts another)")
            stored = index.read(found)
            if (repeat, gating) != (stored.get("repeat"), stored.get("gating")):
                click.echo("note: it keeps the --repeat, --cooldown and --max-temp it was started with")
            exp_dir = found
        else:
            exp_dir, _ = xrun.create_all(base, repeat=repeat, gating=gating)
            click.echo(f"experiment {exp_dir}: parts {', '.join(plans.STUDY)}")
        _exit(_run_all(xrun, exp_dir, force, lock))


def _interruptible(fn, folder: Path):
    try:
        return fn()
    except KeyboardInterrupt:
        click.echo(f"interrupted (Ctrl-C): what was recorded stays; finish it with edgebench experiment --resume "
                   f"{folder}", err=True)
        sys.exit(130)


def _run_all(xrun, exp_dir, force, lock):
    return _interruptible(lambda: xrun.run_all(exp_dir, run_session=lambda s, part: _run_part(s, part), force=force,
                                               log=click.echo, on_lock=lock.set_run_dir), exp_dir)


def _resume(folder: Path, force: bool):
    from orchestrator.experiments import index
    from orchestrator.experiments import run as xrun

    with _measuring() as lock:
        if index.is_experiment(folder):
            _exit(_run_all(xrun, folder, force, lock))
        session = xrun.resume(folder, force=force, log=click.echo)
        lock.set_run_dir(session.store.dir)
        _exit([_interruptible(lambda: _run_part(session), folder)])
