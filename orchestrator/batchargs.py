"""What follows `--` in `edgebench batch` and `cron install`: `run` or `experiment` and their
options, parsed by those very commands (found through the CLI's registry, so that no command
module imports another), and checked at once so that a typo fails when the line is installed,
not at 2 a.m."""

from __future__ import annotations

import click

from orchestrator.batch import OPENERS
from orchestrator.errors import UserError


def parse_args(args: list[str]) -> tuple[str, dict]:
    """(kind, options) of what follows `--`. Raises for a typo or what a batch cannot run."""
    from orchestrator.cli import main
    from orchestrator.resumepolicy import refuse_in_batch

    if not args:
        raise click.UsageError("say what the batch runs after --, e.g. -- run --limit 2")
    kind, rest = args[0], list(args[1:])
    if kind not in OPENERS:
        raise click.UsageError(f"a batch runs `run` or `experiment` (their options follow), not {kind!r}: "
                               "-- run --limit 2")
    command = main.get_command(click.Context(main), kind)
    params = command.make_context(f"batch -- {kind}", rest).params
    refuse_in_batch(params)
    if kind == "experiment" and (params.get("name") == "all" or params.get("plan_only") or params.get("new")
                                 or not (params.get("name") or params.get("plan_file"))):
        raise UserError("a batch runs one experiment plan (a name from `edgebench experiment --help`, or --plan FILE)",
                        fix="-- experiment granular (one batch per plan; `experiment all` finishes itself when "
                            "run again)")
    if kind == "experiment":
        from orchestrator.experiments import plans

        plans.load(params["plan_file"] or plans.find(params["name"]))  # a typo fails at install, not at night
    return kind, params
