"""What a resume may be given. A resumed run measures with the configuration its folder recorded,
so an option that would shape the measurement (workload, model, threads, interval, repetitions...)
cannot apply: every measuring command refuses it the same way, naming it, instead of ignoring it."""

from __future__ import annotations

import click

from orchestrator.errors import UserError

# Parameters a resume does take: the folder, the permission to resume a changed one, how to print.
RESUME_OPTIONS = frozenset({"resume", "force", "fmt"})


def shaping_given(ctx: click.Context) -> list[str]:
    """The options given on this command line (not left at their defaults) that a resume cannot apply."""
    given = []
    for p in ctx.command.params:
        if p.name in RESUME_OPTIONS or not isinstance(p, click.Option) or getattr(p, "alias_of", None):
            continue
        if ctx.get_parameter_source(p.name) not in (click.core.ParameterSource.DEFAULT, None):
            given.append(p.opts[0])
    return given


def refuse_shaping(ctx: click.Context, command: str, folder) -> None:
    """Raise UserError naming the options that would change the run being resumed."""
    given = shaping_given(ctx)
    if given:
        raise UserError(f"{', '.join(given)} would change the run being resumed, so it is not applied",
                        fix=f"{command} --resume {folder} alone, or start a new run with those options")


def refuse_in_batch(params: dict) -> None:
    """A batch finds and resumes its own unfinished run (the same arguments, so the same
    configuration): an explicit --resume or --force has nothing to apply to."""
    if params.get("resume") or params.get("force"):
        raise UserError("a batch resumes its own unfinished run by itself; --resume and --force do not apply",
                        fix="drop --resume/--force (--fresh before -- starts a new run instead)")
