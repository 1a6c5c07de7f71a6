"""`edgebench bench`: what edgebench itself costs, each figure against its baseline."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import click


@click.command(epilog="Exit codes: 0 every target met; 3 a target missed; 1 an error; 4 another measurement "
                      "holds this machine.")
@click.option("--reps", type=click.IntRange(min=1), default=6, show_default=True,
              help="Interleaved bare/edgebench pairs per query for overhead_ratio.")
@click.option("--model", type=click.Path(path_type=Path, dir_okay=False), default=None)
@click.option("--binary", type=click.Path(path_type=Path, dir_okay=False), default=None)
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Default: reports/bench/bench.json.")
def bench(reps, model, binary, out):
    """Measure edgebench's overhead, timing accuracy, CPU and memory on the bootstrapped model."""
    from orchestrator import paths
    from orchestrator.bench import COMMAND, measure
    from orchestrator.config import RunConfig
    from orchestrator.interrupts import exit_on_signals
    from orchestrator.measurelock import measuring
    from orchestrator.report.benchfig import SCALE_COMMAND
    from orchestrator.session import default_binary, default_model, default_workload

    exit_on_signals()
    cfg = RunConfig(binary=(binary or default_binary()).absolute(), model=(model or default_model()).absolute(),
                    workload=default_workload(), out_dir=paths.reports_dir())
    out = out or paths.reports_dir() / "bench" / "bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    with measuring(log=click.echo), tempfile.TemporaryDirectory(prefix="edgebench-bench-") as tmp:
        result = measure(cfg, reps, Path(tmp))
    result.update(model=str(cfg.model), binary=str(cfg.binary))
    out.write_text(json.dumps(result, indent=2))
    click.echo(f"\n{'figure':<28}{'value':>14}{'target':>12}  {'ok':<4}{'ratio':>9}  baseline")
    for name, f in result["figures"].items():
        ratio = "-" if f["ratio_to_baseline"] is None else f"{f['ratio_to_baseline']:.4g}"
        click.echo(f"{name:<28}{f['value']:>14.4g}{f['target']:>12.4g}  {'yes' if f['ok'] else 'NO':<4}{ratio:>9}"
                   f"  {f['baseline']['what']} = {f['baseline']['value']:.4g}")
    click.echo(f"\ncommand: {COMMAND}   (written to {out})")
    click.echo(f"report_10k_* alone, without the model: {SCALE_COMMAND}")
    missed = [name for name, f in result["figures"].items() if not f["ok"]]
    if missed:
        click.echo(f"missed target: {', '.join(missed)}", err=True)
        sys.exit(3)
