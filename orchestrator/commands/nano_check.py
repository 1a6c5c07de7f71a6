"""`edgebench nano-check`: prove the Jetson Nano's build on this x86 host (see orchestrator/nanocheck)."""

from __future__ import annotations

import click

from orchestrator import cliopts
from orchestrator.errors import UserError


@click.command("nano-check")
@click.option("--only", "only", multiple=True, type=click.Choice(["cuda", "aarch64", "python"]),
              help="Run only these checks (repeatable); default: all three.")
@click.option("--no-install", is_flag=True,
              help="Never install the Debian packages it needs (as root it runs the nano-check-deps.sh it ships).")
@cliopts.format_option(("table", "json"), "table for people; json: the whole report (report.json's object).")
@cliopts.json_alias
@click.option("--write-constraints", is_flag=True,
              help="Rewrite the Nano's pip constraints (orchestrator/data/constraints/jetson-nano.txt) from the "
                   "versions the Python check proves; refused while any of them fails there.")
def nano_check(only: tuple[str, ...], no_install: bool, fmt: str, old_json: bool, write_constraints: bool):
    """Build llama.cpp for the Nano without a board: CUDA 11.8 for sm_53 with the patch, main
    cross-built for aarch64 and run under qemu as a Cortex-A57, and the Python stack imported
    there. Writes build/nano-check/report.json."""
    import json

    from orchestrator.nanocheck import common, report

    as_json = cliopts.chosen(fmt, old_json) == "json"
    checks = tuple(c for c in report.CHECKS if not only or c in only)
    if write_constraints and "python" not in checks:
        raise click.UsageError("--write-constraints pins what the python check proves: add --only python")
    out_dir = common.check_dir()
    result = report.run(out_dir, checks, install=not no_install, log=lambda s: click.echo(s, err=True),
                        write_constraints=write_constraints)
    click.echo(json.dumps(result, indent=2, default=str) if as_json else report.table(result))
    click.echo(f"report: {out_dir / report.REPORT}", err=True)
    if not result["ok"]:
        failed = ", ".join(a["key"] for a in result["acceptance"] if not a["ok"])
        raise UserError(f"nano-check failed: {failed}", fix=f"read {out_dir / report.REPORT} and the logs beside it")
