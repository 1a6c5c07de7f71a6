"""`edgebench bench`: what edgebench itself costs, each figure against its baseline."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import click

from orchestrator import cliopts, exitcodes

COLUMNS = ["figure", "value", "target", "ok", "ratio_to_baseline", "baseline", "baseline_value"]


@click.command(cls=cliopts.Command, epilog=f"Exit codes: {exitcodes.OK} every target met; {exitcodes.FAILED_QUERIES} "
                                           f"a target missed; {exitcodes.ERROR} an error; {exitcodes.LOCKED} another "
                                           "measurement holds this machine.")
@click.option("--reps", type=click.IntRange(min=1), default=6, show_default=True,
              help="Interleaved bare/edgebench pairs per query for overhead_ratio.")
@click.option("--model", type=click.Path(path_type=Path, dir_okay=False), default=None)
@click.option("--binary", type=click.Path(path_type=Path, dir_okay=False), default=None)
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="The JSON file written (default: reports/bench/bench.json).")
@cliopts.format_option(help="table for people; json: bench.json's object; csv or md: one row per figure.")
def bench(reps, model, binary, out, fmt):
    """Measure edgebench's overhead, timing accuracy, CPU and memory on the bootstrapped model."""
    from orchestrator import paths, runconfig
    from orchestrator.bench import COMMAND, measure
    from orchestrator.measuring import measuring
    from orchestrator.report.benchfig import SCALE_COMMAND

    cfg = runconfig.resolve(binary=binary, model=model)
    out = out or paths.reports_dir() / "bench" / "bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    log = click.echo if fmt == "table" else lambda s: click.echo(s, err=True)
    with measuring(log=log), tempfile.TemporaryDirectory(prefix="edgebench-bench-") as tmp:
        result = measure(cfg, reps, Path(tmp), log=log)
    result.update(model=str(cfg.model), binary=str(cfg.binary))
    out.write_text(json.dumps(result, indent=2))
    rows = [{"figure": name, "value": f["value"], "target": f["target"], "ok": f["ok"],
             "ratio_to_baseline": f["ratio_to_baseline"], "baseline": f["baseline"]["what"],
             "baseline_value": f["baseline"]["value"]} for name, f in result["figures"].items()]
    cliopts.echo_rows(fmt, COLUMNS, rows, doc=result, table=lambda: _table(rows, out, COMMAND, SCALE_COMMAND))
    missed = [r["figure"] for r in rows if not r["ok"]]
    if missed:
        click.echo(f"missed target: {', '.join(missed)}", err=True)
        sys.exit(exitcodes.FAILED_QUERIES)


def _table(rows: list[dict], out: Path, command: str, scale_command: str) -> None:
    click.echo(f"\n{'figure':<28}{'value':>14}{'target':>12}  {'ok':<4}{'ratio':>9}  baseline")
    for r in rows:
        ratio = "-" if r["ratio_to_baseline"] is None else f"{r['ratio_to_baseline']:.4g}"
        click.echo(f"{r['figure']:<28}{r['value']:>14.4g}{r['target']:>12.4g}  {'yes' if r['ok'] else 'NO':<4}"
                   f"{ratio:>9}  {r['baseline']} = {r['baseline_value']:.4g}")
    click.echo(f"\ncommand: {command}   (written to {out})")
    click.echo(f"report_10k_* alone, without the model: {scale_command}")
