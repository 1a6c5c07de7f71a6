"""Every engine a run can measure with, by the name `--engine` takes: one table. An engine
added here is offered by run, experiment, bench and batch, recorded in the manifest and in each
record's `engine`, and found by `doctor`.

Each entry names the class (imported only when chosen: the measuring process loads one engine)
and where bootstrap puts its program, relative to the build folder."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import UserError


@dataclass(frozen=True)
class EngineEntry:
    name: str
    cls: str  # "module:Class"
    binary: str  # the default program, relative to build/
    help: str
    tokenize: str = "tokenize"  # the tokenizer beside it that counts a prompt's tokens
    bootstrap: str = "make bootstrap"  # what builds its program

    def load(self):
        module, _, attr = self.cls.partition(":")
        return getattr(importlib.import_module(module), attr)


ENGINES: dict[str, EngineEntry] = {e.name: e for e in (
    EngineEntry("main", "orchestrator.engine.llama_main:LlamaMain", "llama.cpp/main",
                "llama.cpp a33e6a0 main, one process per query (the study's way; the default)"),
    EngineEntry("server", "orchestrator.engine.llama_server:LlamaServer", "llama.cpp/server",
                "a llama.cpp server (a33e6a0 server or llama-server) resident for the run, queries over HTTP"),
    EngineEntry("completion", "orchestrator.engine.llama_completion:LlamaCompletion",
                "llama-current/build/bin/llama-completion", "today's llama.cpp llama-completion (bootstrap --engine "
                "current), one process per query", tokenize="llama-tokenize",
                bootstrap="edgebench bootstrap --engine current"),
)}
NAMES = tuple(ENGINES)
DEFAULT = "main"


def entry(name: str) -> EngineEntry:
    try:
        return ENGINES[name]
    except KeyError:
        raise UserError(f"no engine named {name!r}", fix=f"--engine one of: {', '.join(NAMES)}") from None


def default_binary(name: str, build_dir: Path) -> Path:
    return build_dir / entry(name).binary


def program_beside(binary: Path, name: str) -> Path:
    """`name`'s program in the folder of `binary` (another engine's): a33e6a0's `server` is built
    beside its `main`, so a plan that switches engine keeps the run's build."""
    return Path(binary).parent / Path(entry(name).binary).name


def create(cfg, prep, executor=None):
    """The engine `cfg.engine` for a session prepared as `prep` (session.prepare); `executor` has
    engine/child.run_child's signature (tests hand in a fake program)."""
    return entry(cfg.engine).load().create(cfg, prep, executor)
