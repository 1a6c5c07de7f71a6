"""Which unfinished `experiment all` (or `engines`) a new one finishes instead of starting afresh: the newest
unfinished one under the reports folder, when it measured the same binary, model and workload
(otherwise its figures would mix two set-ups, so a new one starts and the old one stays)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestrator.config import RunConfig
from orchestrator.experiments import index

INPUTS = ("binary", "model", "workload")


@dataclass
class Found:
    folder: Path | None  # the experiment to finish, or None: start a new one
    note: str | None = None  # what a person should know about the choice


def same_inputs(stored: dict, cfg: RunConfig) -> bool:
    """Whether a recorded config (config.to_json()) measured what `cfg` would."""
    return all(stored.get(k) == str(getattr(cfg, k)) for k in INPUTS)


def to_finish(base: RunConfig, repeat: int | None, gating: dict | None, suite: str = "all") -> Found:
    found = index.find_unfinished(base.out_dir, suite)
    if not found:
        return Found(None)
    data = index.read(found)
    if not same_inputs(data["config"], base):
        return Found(None, f"{found} is unfinished but used another binary, model or workload; starting a new one")
    note = f"finishing the unfinished experiment {found} (--new starts another)"
    if (repeat, gating) != (data.get("repeat"), data.get("gating")):
        note += "\nnote: it keeps the --repeat, --cooldown and --max-temp it was started with"
    return Found(found, note)
