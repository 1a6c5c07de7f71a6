"""`edgebench run`: parse options, then measure a session under orchestrator.measuring and print."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator import cliopts, exitcodes
from orchestrator.cliopts import run_default
from orchestrator.sampling.autodetect import GPU_SAMPLERS
from orchestrator.sampling.autodetect import describe as describe_sampler


@click.command(cls=cliopts.Command, epilog=exitcodes.HELP)
@cliopts.target_options
@cliopts.reports_dir_option()
@click.option("--resume", type=click.Path(path_type=Path, file_okay=False, exists=True), default=None,
              help="Finish an interrupted run: reports/<run_id>.")
@click.option("--force", is_flag=True,
              help="With --resume: resume although the binary, model, workload or machine changed (recorded).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Queries per category.")
@click.option("--category", "categories", multiple=True, help="Only this category (repeatable).")
@click.option("--warmup", type=click.IntRange(min=0), default=0, show_default=True,
              help="Warm-up runs per query, recorded as phase 'warmup' and left out of statistics.")
@click.option("--repeat", type=click.IntRange(min=1), default=1, show_default=True,
              help="Measured repetitions per query.")
@click.option("--seed", type=int, default=None, help=run_default("main's sampling seed (main -s).", "seed"))
@click.option("--threads", "-t", type=click.IntRange(min=1), default=None, help="main -t (default: all cores).")
@click.option("--ngl", "n_gpu_layers", type=click.IntRange(min=0), default=None,
              help="Layers to offload to the GPU (main -ngl); default: none passed, as the study did.")
@click.option("--interval", "interval_s", type=click.FloatRange(min=0.001), default=None,
              help=run_default("Process sampling interval, seconds.", "interval_s"))
@click.option("--gpu-sampler", type=click.Choice(GPU_SAMPLERS), default=None,
              help="GPU/board telemetry source (default: jtop, tegrastats, sysfs or nvml, the first this machine "
                   "offers, else none).")
@click.option("--idle-timeout", "idle_timeout_s", type=click.FloatRange(min=0.1), default=None,
              help=run_default("Kill a query that prints nothing for this many seconds.", "idle_timeout_s"))
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0.1), default=None,
              help=run_default("Kill a query that runs longer than this many seconds.", "timeout_s"))
@click.option("--no-memory-check", "memory_check", flag_value=False, default=None,
              help="Run a model larger than the available memory anyway (it will page from disk).")
@click.option("--idle-window", "idle_window_s", type=click.FloatRange(min=0), default=None,
              help=run_default("Seconds the GPU/board sampler watches the idle board before the first query, for "
                               "energy net of idle power; 0 skips it.", "idle_window_s"))
@click.option("--ignore-eos/--stop-at-eos", default=None,
              help="Default: --ignore-eos for a synthetic twin (its text is noise), stop at EOS otherwise.")
@cliopts.format_option()
@click.pass_context
def run(ctx, workload, model, binary, engine, reports_dir, resume, force, limit, categories, warmup, repeat, seed,
        threads, n_gpu_layers, interval_s, gpu_sampler, idle_timeout_s, timeout_s, memory_check, ignore_eos,
        idle_window_s, fmt):
    """Run a workload: each query answered by the engine (one llama.cpp `main` per query by default),
    measured, written as it goes."""
    from orchestrator import runconfig
    from orchestrator import session as sess
    from orchestrator.measuring import exit_for, measuring
    from orchestrator.resumepolicy import refuse_shaping
    from orchestrator.runprint import progress_echo, run_with_progress, show

    if force and not resume:
        raise click.UsageError("--force only applies to --resume")
    if resume:
        refuse_shaping(ctx, "edgebench run", resume)
    echo = progress_echo(fmt)
    with measuring("edgebench run --resume {folder}", log=echo) as m:
        if resume:
            session = sess.Session.resume(resume, force=force, log=echo)
            echo(f"resuming {session.store.dir}: {len(session.items) - len(session.pending())} of "
                 f"{len(session.items)} measurements already recorded")
        else:
            session = sess.Session.create(runconfig.from_options(ctx.params), warmup=warmup, repeat=repeat, log=echo)
        m.measures(session.store.dir)
        for w in session.warnings():
            click.echo(f"warning: {w}", err=True)
        for smp in session.samplers:
            if smp.kind == "gpu":
                echo(describe_sampler(smp))
        synthetic = session.prep.model_info["synthetic"]
        echo(f"run {session.store.dir}: {len(session.pending())} measurements, model "
             f"{session.cfg.model.name}{' (synthetic twin, --ignore-eos)' if synthetic else ''}")
        result = run_with_progress(session, echo)
        show(session, result, fmt)
        exit_for(result.n_failed, len(result.records))
