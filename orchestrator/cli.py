"""The `edgebench` command. Each subcommand lives in its own module (orchestrator/commands/)
and is imported only when it is called, so that `edgebench run` never pays for the report stack."""

from __future__ import annotations

import importlib

import click

from orchestrator import __version__

# name -> "module:attribute"; keep one line per command so parallel work merges cleanly.
COMMANDS = {
    "batch": "orchestrator.commands.batch:batch",
    "bench": "orchestrator.commands.bench:bench",
    "bootstrap": "orchestrator.commands.bootstrap:bootstrap",
    "cron": "orchestrator.commands.cron:cron",
    "doctor": "orchestrator.commands.doctor:doctor",
    "experiment": "orchestrator.commands.experiment:experiment",
    "nano-check": "orchestrator.commands.nano_check:nano_check",
    "report": "orchestrator.commands.report:report",
    "run": "orchestrator.commands.run:run",
    "runs": "orchestrator.commands.runs:runs",
    "serve": "orchestrator.commands.serve:serve",
    "telemetry": "orchestrator.commands.telemetry:telemetry",
    "workloads": "orchestrator.commands.workloads:workloads",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgebench")
def main():
    """Measure what small language models cost on edge boards."""
