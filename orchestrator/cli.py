"""The `edgebench` command. Each subcommand lives in its own module (orchestrator/commands/)
and is imported only when it is called, so that `edgebench run` never pays for the report stack."""

from __future__ import annotations

import functools
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
    "fleet": "orchestrator.commands.fleet:fleet",
    "nano-check": "orchestrator.commands.nano_check:nano_check",
    "report": "orchestrator.commands.report:report",
    "load": "orchestrator.commands.load:load",
    "run": "orchestrator.commands.run:run",
    "runs": "orchestrator.commands.runs:runs",
    "serve": "orchestrator.commands.serve:serve",
    "telemetry": "orchestrator.commands.telemetry:telemetry",
    "workloads": "orchestrator.commands.workloads:workloads",
}

# name -> the extra (setup.cfg) the command cannot run without: checked before it starts, so a
# missing one is one message with its install command, not an ImportError's traceback
EXTRA_OF = {
    "bench": "report",
    "report": "report",
}


def _needing(cmd: click.Command, name: str, extra: str) -> click.Command:
    if getattr(cmd.callback, "edgebench_extra", None):
        return cmd
    inner = cmd.callback

    @functools.wraps(inner)
    def callback(*args, **kwargs):
        from orchestrator import extras

        extras.require(extra, f"edgebench {name}")
        return inner(*args, **kwargs)

    callback.edgebench_extra = extra
    cmd.callback = callback
    return cmd


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        cmd = getattr(importlib.import_module(module), attr)
        return _needing(cmd, name, EXTRA_OF[name]) if name in EXTRA_OF else cmd


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgebench")
def main():
    """Measure what small language models cost on edge boards."""
