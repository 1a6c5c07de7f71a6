"""`edgebench report`: render run and experiment folders, the index, or a comparison."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator import cliopts, paths
from orchestrator.errors import UserError

_DIR = click.Path(path_type=Path, file_okay=False, exists=True)


@click.command(cls=cliopts.Command)
@click.argument("folders", nargs=-1, type=_DIR, metavar="[RUN_OR_EXPERIMENT_DIR]...")
@click.option("--compare", "pair", nargs=2, type=_DIR, default=None, metavar="A B",
              help="Show two runs side by side (ratios B / A and the spread of each).")
@click.option("--merge", is_flag=True,
              help="One page across boards from RUN_DIR... (e.g. reports/fleet/*/*): a row per board and power mode, "
                   "figures faceted by board, the verdict per board; written as merged.html in their common folder.")
@cliopts.reports_dir_option("Without RUN_OR_EXPERIMENT_DIR: render every run and experiment in this folder "
                            "(default: reports/).", alias_of=())
@click.option("--force", is_flag=True, help="With --compare: compare runs of different devices, models or binaries; "
              "with --merge: merge runs of different models or workloads.")
@click.option("--bandwidth-gbs", type=click.FloatRange(min=0.001), default=None,
              help="Memory bandwidth for the decode roofline (default: 25.6 on a Jetson Nano, none elsewhere).")
@click.option("--index/--no-index", default=True, show_default=True,
              help="Rebuild index.html in the folder that holds the rendered runs.")
@click.option("--slo", default=None, metavar="ttft=2s,tbt=200ms",
              help="The latency budget each category is judged against: the 90th percentile of TTFT and of the "
                   "gaps between tokens. Default ttft=2s,tbt=200ms (an interactive agent).")
@click.option("--format", "fmt", type=click.Choice(["text", "md", "json"]), default="text", show_default=True,
              help="What to print for each folder: the paths written (text), the per-category answer as a "
                   "Markdown table (md), or summary.json's object (json).")
def report(folders, pair, merge, reports_dir, force, bandwidth_gbs, index, slo, fmt):
    """Render RUN_OR_EXPERIMENT_DIR... (default: every run under --reports-dir, reports/) into report.html, its
    per-query pages queries-N.html, summary.json, queries.csv and queries.parquet beside the data,
    and rebuild reports/index.html."""
    import json

    from orchestrator.report import index as index_mod
    from orchestrator.report import load, render, verdict

    budget = verdict.parse_slo(slo)

    if merge:
        from orchestrator.report.merge import merge as merge_runs

        if pair:
            raise click.UsageError("--merge and --compare are two pages: give one of them")
        out, forced = merge_runs(list(folders), force=force, slo=budget)
        for run, label, va, vb in forced:
            click.echo(f"warning: {run} differs in {label} ({va} vs {vb}); merged because of --force", err=True)
        click.echo(f"merged: {out}")
        return
    if pair:
        from orchestrator.report.compare import compare

        out, forced = compare(pair[0], pair[1], force=force)
        for label, va, vb in forced:
            click.echo(f"warning: the runs differ in {label} ({va} vs {vb}); compared because of --force", err=True)
        click.echo(f"comparison: {out}")
        if not folders:
            return
    from orchestrator.load.format import is_load

    loads = [f for f in folders if is_load(f)]  # `edgebench load`'s folders have a page of their own
    folders = tuple(f for f in folders if f not in loads)
    for f in loads:
        from orchestrator.report import loadpage

        click.echo(f"report: {loadpage.render(f, budget if slo else None)}")
    if loads and not folders:
        return
    if folders:
        targets = list(folders)
        for f in targets:
            if not (load.is_run(f) or load.is_experiment(f)):
                if index_mod.folders(f):  # a folder of runs, like reports/
                    continue
                raise UserError(f"{f} is neither a run folder nor an experiment folder (no manifest.json or "
                                f"experiment.json)", fix="pass reports/<run_id>/ (ls reports/), or reports/ for all")
        targets = [t for f in targets for t in ([f] if load.is_run(f) or load.is_experiment(f)
                                                else index_mod.folders(f))]
    else:
        reports = reports_dir or paths.reports_dir()
        targets = index_mod.folders(reports)
        if not targets:
            raise UserError(f"no run folder under {reports}", fix="edgebench run (then edgebench report)")
    _check_writable(targets, index)
    failed = []
    for t in targets:
        try:
            page = render.render(t, bandwidth_gbs=bandwidth_gbs, slo=budget)
            if fmt == "text":
                click.echo(f"report: {page}")
            else:
                summary = json.loads((page.parent / verdict.SUMMARY).read_text(encoding="utf-8"))
                click.echo(verdict.markdown(summary["categories"], budget) if fmt == "md"
                           else json.dumps(summary, indent=2))
        except UserError as e:
            failed.append(t)
            click.echo(f"error: {t}: {e.format_message()}", err=True)
    if index:
        # an experiment's own runs are listed by the experiment's page, not by an index inside it
        for parent in sorted({Path(t).resolve().parent for t in targets}):
            if load.is_experiment(parent):
                continue
            out, problems = index_mod.build(parent)
            if fmt == "text":
                click.echo(f"index: {out}")
            for line in problems:
                click.echo(f"warning: left out of the index: {line}", err=True)
    if failed:
        raise UserError(f"{len(failed)} of {len(targets)} folders could not be rendered (see above)",
                        fix="repair or remove those folders, then edgebench report again")


def _check_writable(targets: list[Path], index: bool) -> None:
    """A report is written beside the run's data, and the index beside the runs: say so once,
    before anything is rendered, when a folder is read-only."""
    folders = list(targets) + ([Path(t).resolve().parent for t in targets] if index else [])
    blocked = list(dict.fromkeys(str(b) for b in map(paths.unwritable, folders) if b is not None))
    if blocked:
        raise UserError(f"cannot write the report into {', '.join(blocked)}: read-only for this user (a read-only "
                        "disk or mount, or its permissions); the report is written beside the run's data",
                        fix="copy the run folder to a writable disk (cp -r RUN_DIR ~/runs/) and report the copy: "
                            "edgebench report ~/runs/RUN_DIR")
