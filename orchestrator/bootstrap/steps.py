"""The step machinery: each step can tell whether it is done, say what it would run, and
run. The runner skips finished steps, records each success in the ledger, and forgets the
steps downstream of anything it redoes."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.bootstrap.ledger import Ledger
from orchestrator.errors import UserError


@dataclass(frozen=True)
class Options:
    """Everything bootstrap was asked to do, resolved once; recorded in the ledger."""

    root: Path
    cache: Path
    llama_source: str = "auto"  # auto | git | pypi | <path>
    model: Path | None = None
    model_source: str = "auto"  # auto | download | twin
    profile: str = "host"
    jobs: int | None = None
    twin_seed: int = 0
    twin: str = "tinyllama"  # a key of twin.TWINS
    force: tuple[str, ...] = ()  # steps the user asked to redo (a step may wipe its partial work)
    gcc_from: Path | None = None  # a tarball written by --pack-gcc on another board
    make_swap: bool = False  # preflight may add a swap file (sudo) when memory + swap is short
    max_power: bool = False  # preflight may switch the board to its MAXN power mode (sudo)

    @property
    def build(self) -> Path:
        return self.root / "build"

    @property
    def llama_dir(self) -> Path:
        return self.build / "llama.cpp"

    @property
    def models_dir(self) -> Path:
        return self.build / "models"

    @property
    def logs_dir(self) -> Path:
        return self.build / "logs"


@dataclass
class Context:
    options: Options
    ledger: Ledger
    platform: dict
    log: Callable[[str], None] = print
    results: dict = field(default_factory=dict)
    dry_run: bool = False  # commands() may then show placeholders for what only a run can learn

    def entry(self, name: str) -> dict | None:
        return self.ledger.get(name)


@dataclass(frozen=True)
class Command:
    """A command as the dry run shows it and as `sh` runs it: argv, never a shell string."""

    argv: tuple[str, ...]
    cwd: str | None = None
    env: tuple[tuple[str, str], ...] = ()

    def as_dict(self) -> dict:
        return {"argv": list(self.argv), "cwd": self.cwd, "env": dict(self.env)}


class Step:
    name: str = ""
    title: str = ""
    depends: tuple[str, ...] = ()
    needs_sudo: bool = False  # preflight checks `sudo -n true` when such a step is still to run

    def urls(self, ctx: Context) -> list[tuple[str | tuple[str, ...], str]]:
        """(url, what it is) this step cannot do without; preflight probes each before anything slow.
        A tuple of urls means alternatives: one answering is enough."""
        return []

    def is_done(self, ctx: Context) -> bool:
        return ctx.entry(self.name) is not None

    def commands(self, ctx: Context) -> list[Command]:
        return []

    def run(self, ctx: Context) -> dict:
        raise NotImplementedError


def sh(cmd: Command, log_path: Path | None = None, timeout: float | None = None) -> str:
    """Run one command; on failure raise UserError with the tail of its output."""
    env = dict(os.environ)
    for key, value in cmd.env:
        # "$PATH" in a value stands for the variable's current value (PATH=/usr/local/cuda/bin:$PATH)
        env[key] = value.replace(f"${key}", os.environ.get(key, ""))
    out = open(log_path, "ab") if log_path else subprocess.PIPE
    try:
        proc = subprocess.run(
            list(cmd.argv), cwd=cmd.cwd, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout
        )
    finally:
        if log_path:
            out.close()
    text = Path(log_path).read_bytes()[-4000:] if log_path else (proc.stdout or b"")
    text = text.decode("utf-8", "replace")
    if proc.returncode != 0:
        tail = "\n".join(text.strip().splitlines()[-15:])
        where = f" (full log: {log_path})" if log_path else ""
        raise UserError(
            f"`{' '.join(cmd.argv)}` exited with {proc.returncode}{where}:\n{tail}",
            fix="fix the cause above, then rerun `make bootstrap` (finished steps are skipped)",
        )
    return text


def dependents(steps: list[Step], name: str) -> list[str]:
    out: list[str] = []
    frontier = {name}
    for step in steps:
        if frontier & set(step.depends):
            out.append(step.name)
            frontier.add(step.name)
    return out


def run_steps(steps: list[Step], ctx: Context, force: tuple[str, ...] = ()) -> list[str]:
    """Run what is not done; return the names of the steps that ran."""
    names = [s.name for s in steps]
    for f in force:
        if f not in names:
            raise UserError(f"no bootstrap step named {f!r}", fix=f"--redo one of: {', '.join(names)}")
    redo = set(force)
    ran: list[str] = []
    for step in steps:
        if step.name not in redo and step.is_done(ctx):
            ctx.log(f"[done] {step.name}: {step.title}")
            continue
        for dep in dependents(steps, step.name):
            redo.add(dep)
            ctx.ledger.forget(dep)
        ctx.ledger.forget(step.name)
        ctx.log(f"[run ] {step.name}: {step.title}")
        started = time.time()
        record = step.run(ctx) or {}
        record.update(
            status="done",
            started_at=_iso(started),
            finished_at=_iso(time.time()),
            duration_s=round(time.time() - started, 2),
        )
        ctx.ledger.record(step.name, record)
        ctx.log(f"       {step.name} finished in {record['duration_s']:.1f} s")
        ran.append(step.name)
    return ran


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="seconds")
