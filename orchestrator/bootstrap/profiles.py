"""Which steps a profile runs, in order; what a dry run shows; a real run under the bootstrap lock."""

from __future__ import annotations

from pathlib import Path

from orchestrator.bootstrap.build import BuildLlama
from orchestrator.bootstrap.cuda import CudaProbe, Smoke
from orchestrator.bootstrap.gcc import Gcc
from orchestrator.bootstrap.jetson_stats import JetsonStats
from orchestrator.bootstrap.llama_current import LlamaCurrent, refuse_profile
from orchestrator.bootstrap.llama_source import LlamaSource
from orchestrator.bootstrap.model import Model
from orchestrator.bootstrap.patch import ApplyPatch
from orchestrator.bootstrap.python_env import PythonEnv
from orchestrator.bootstrap.steps import Context, Step, run_steps
from orchestrator.errors import UserError

PROFILES = ("host", "jetson-nano", "jetson-orin")
# What `bootstrap --engine` adds to a profile's steps: main (a33e6a0, the default) adds nothing;
# current adds today's llama.cpp (llama-completion, llama-server) beside it.
ENGINES = ("main", "current")


def steps_for(profile: str) -> list[Step]:
    if profile == "host":
        return [LlamaSource(), ApplyPatch(), BuildLlama(), Model()]
    # On a board: the steps that need sudo run first (right after `sudo -v`), then the hours
    # of GCC (Nano only: JetPack 5/6 bring CUDA 11/12 and a GCC that nvcc accepts), then the
    # CUDA build of llama.cpp for the probed architecture, the model, and a GPU smoke test.
    board = [PythonEnv(), JetsonStats()]
    if profile == "jetson-nano":
        board.append(Gcc())
    return [*board, LlamaSource(), ApplyPatch(), CudaProbe(), BuildLlama(), Model(), Smoke()]


def select(profile: str, pack_gcc: bool = False, engine: str = "main") -> list[Step]:
    """The profile's steps, with today's llama.cpp last for `engine` current; with `pack_gcc`,
    only those up to and including GCC."""
    steps = steps_for(profile)
    if engine == "current":
        refuse_profile(profile)
        steps.append(LlamaCurrent())
    if pack_gcc:
        names = [s.name for s in steps]
        if "gcc" not in names:
            raise UserError(f"profile {profile} does not build GCC, so there is none to pack",
                            fix="--profile jetson-nano on a Jetson Nano")
        steps = steps[: names.index("gcc") + 1]
    return steps


def todo(ctx: Context, steps: list[Step], force) -> list[Step]:
    return [s for s in steps if s.name in force or not s.is_done(ctx)]


def describe(ctx: Context, steps: list[Step], with_preflight: bool) -> dict:
    """The plan of a dry run: each step, done or not, and its commands; the preflight's verdicts
    when asked (computed without acting: no swap made, no power mode changed)."""
    o = ctx.options
    doc = {"profile": o.profile, "root": str(o.root), "steps": [
        {"step": s.name, "title": s.title, "done": s.is_done(ctx), "needs_sudo": s.needs_sudo,
         "commands": [c.as_dict() for c in s.commands(ctx)]}
        for s in steps
    ]}
    if with_preflight:
        from orchestrator.bootstrap import preflight

        doc["preflight"] = preflight.as_records(preflight.run(ctx, todo(ctx, steps, o.force), act=False))
    return doc


def run_preflight(ctx: Context, steps: list[Step], force) -> None:
    """Check the board before the steps that remain, record the verdicts, stop at a refusal."""
    from orchestrator.bootstrap import preflight

    remaining = todo(ctx, steps, force)
    if not remaining:
        return
    checks = preflight.run(ctx, remaining, act=True)
    for c in checks:
        if c.level != "ok" or c.check in ("l4t", "module", "power"):
            ctx.log(f"preflight {c.level:6} {c.check}: {c.detail}" + (f"  (fix: {c.fix})" if c.fix else ""))
    ctx.ledger.record("preflight", {"status": "checked", "checks": preflight.as_records(checks)})
    preflight.enforce(checks)


def _host_preflight(ctx: Context, steps: list[Step], force) -> None:
    """No board preflight here, but what today's llama.cpp needs (CMake, its sdist) is checked
    before the first step, so that a missing one stops the bootstrap at once."""
    from orchestrator.bootstrap import preflight

    checks = preflight.host_checks(ctx, todo(ctx, steps, force))
    for c in checks:
        if c.level != "ok":
            ctx.log(f"preflight {c.level:6} {c.check}: {c.detail}" + (f"  (fix: {c.fix})" if c.fix else ""))
    preflight.enforce(checks)


def execute(ctx: Context, steps: list[Step], with_preflight: bool,
            pack_gcc: bool = False) -> tuple[list[str], Path | None]:
    """Run what is not done yet under the checkout's bootstrap lock: (the names of the steps
    that ran, the packed GCC tarball when `pack_gcc`)."""
    from filelock import FileLock, Timeout

    o = ctx.options
    o.build.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(o.build / ".bootstrap.lock"), timeout=1):
            if with_preflight:
                run_preflight(ctx, steps, o.force)
            else:
                _host_preflight(ctx, steps, o.force)
            ran = run_steps(steps, ctx, force=o.force)
            if pack_gcc:
                from orchestrator.bootstrap import gcc

                return ran, gcc.pack(ctx)
            return ran, None
    except Timeout as exc:
        raise UserError("another bootstrap is running in this checkout", fix="wait for it to finish") from exc
