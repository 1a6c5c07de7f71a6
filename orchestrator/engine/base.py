"""The seam between a measuring session and an inference engine.

A session measures items; an engine knows how one query reaches one particular inference
program and what that program says about itself. For each item the session asks the engine for
an `Invocation` (the argv and context size, decided once, also what `bench` runs bare), then
for its measurement, and gets back data only: an `Outcome` holding the record's measured fields,
the samplers' readings, and the raw files to keep (bytes, or files the engine left in the scratch
folder it was handed). The session builds the record (session.py, `_record`) and the store writes
every byte under the run folder: it hands the engine a scratch folder on the run folder's disk and
adopts the files named in the outcome into raw/ with one rename, so an attempt's raw folder exists
complete or not at all.

llama.cpp a33e6a0 `main`, one process per query, is the first engine (engine/llama_main.py).
An engine that keeps a process for the whole run (a resident server) starts it in `open()` and
stops it in `close()`; the session calls both around its queries, as it does its samplers', and
records what `info()` says in the manifest's `engine`. engine/registry.py names every engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from orchestrator import fields as F


@dataclass(frozen=True)
class Invocation:
    """What the engine will run for one query. `refusal` (a status and a sentence) says it will
    not run it at all, e.g. a prompt that cannot fit the model's context."""

    argv: list[str]
    ctx_size: int
    prompt_tokens: int
    workdir: Path
    refusal: tuple[str, str] | None = None


@dataclass
class Outcome:
    """One query measured, as data. `fields` are the record's measured fields (fields.py names);
    `timeline` is what the samplers' aggregates need (None when nothing ran, and then no sampler
    field is recorded); `files` maps a raw file's name (store.py) to a file the engine left in its
    scratch folder, `blobs` to bytes the store writes."""

    fields: dict
    samples: dict[str, list[dict]] = field(default_factory=dict)
    timeline: dict | None = None
    files: dict[str, Path] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def failed(cls, status: str, error: str, **fields) -> Outcome:
        """An attempt that never ran: its status and why, and whatever was known before."""
        return cls({F.STATUS: status, F.ERROR: error, **fields})


class Engine:
    """A base class rather than a Protocol so that an engine with nothing to start or stop for the
    whole run (one process per query) inherits the no-op lifecycle."""

    name: str = ""  # what `--engine` takes and a record's `engine` says
    title: str = ""  # the program, in words, for the manifest and `doctor`

    def invocation(self, cfg, query, prompt_tokens: int, workdir: Path) -> Invocation:
        """The argv (and context size) for `query` under `cfg`, working in `workdir`."""
        raise NotImplementedError

    def measure(self, inv: Invocation, cfg, samplers: list) -> Outcome:
        """Run `inv` with `samplers` watching; never raises for a query that goes wrong (that is an
        Outcome with its status), only for what must stop the run (a full disk, a signal)."""
        raise NotImplementedError

    def open(self, cfg, log) -> dict:
        """Before the run's first query (again after a resume): start what lives for the whole run.
        Returns facts for the manifest's `engine` (e.g. a server's load time), {} when none."""
        return {}

    def close(self) -> None:
        """After the run's last query, also when it is interrupted: stop what open() started."""

    def info(self) -> dict:
        """The manifest's `engine` before the run starts."""
        return {"name": self.name, "title": self.title}

    def bare(self, inv: Invocation) -> float:
        """Seconds `inv` takes run bare: the program alone, its output thrown away, no stream
        timestamps, samplers or files. `edgebench bench` measures the harness against it."""
        import subprocess
        import time

        started = time.perf_counter()
        subprocess.run(inv.argv, cwd=inv.workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        return time.perf_counter() - started
