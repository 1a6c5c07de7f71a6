"""The run configuration: one frozen object, what the manifest records. Its field defaults are
the only defaults of a run's settings: runconfig.py (the one resolver) fills what a command, a
plan or a batch leaves out from here, and `--help` shows them from here."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class RunConfig:
    binary: Path
    model: Path
    workload: Path
    out_dir: Path
    seed: int = 42
    # which inference program answers the queries (engine/registry.py): a33e6a0 `main` as the study did
    engine: str = "main"
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    n_gpu_layers: int | None = None  # None: pass no -ngl, as the study did
    batch_size: int | None = None
    ignore_eos: bool | None = None  # None: decided by the model (a synthetic twin's text is noise)
    interval_s: float = 0.5
    gpu_sampler: str | None = None  # None: the best this machine offers (orchestrator/sampling/autodetect.py)
    idle_timeout_s: float = 60.0
    timeout_s: float = 600.0
    limit: int | None = None  # queries per category
    categories: tuple[str, ...] = ()
    ctx_min: int = 512  # main's default; raised when prompt + output need more
    memory_check: bool = True  # refuse a model larger than the memory available
    # seconds the GPU/board sampler watches the idle board before the first query, for energy net of
    # idle (sampling/idle.py); 0 skips it. Only a run with a GPU/board sampler waits.
    idle_window_s: float = 2.0

    def to_json(self) -> dict:
        d = asdict(self)
        return {k: str(v) if isinstance(v, Path) else (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}
