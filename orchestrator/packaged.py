"""The files edgebench ships inside its package (orchestrator/data/): the Nano patch, the
study's experiment plans, the default workload, the board scripts, the board's pip
constraints and the recorded Nano that `make bench` times the samplers on (sampling/recorded.py).
Read through importlib.resources, so a checkout and an installed wheel find the same files; a
user's own plans and workloads come from paths (--plan FILE, --workload FILE)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from orchestrator.errors import UserError

REINSTALL = "pip install --force-reinstall edgebench (from a wheel or a checkout, not a zip)"


def data_path(*parts: str) -> Path:
    """A real file or folder under orchestrator/data/ (patch, bash and pip need paths, which an
    unzipped install has); looked up when used, so a broken install fails the command that needs
    the file, not every command."""
    ref = resources.files("orchestrator").joinpath("data", *parts)
    if not isinstance(ref, Path) or not ref.exists():
        raise UserError(f"the edgebench install has no readable {'/'.join(parts)} ({ref})", fix=REINSTALL)
    return ref


def plans_dir() -> Path:
    return data_path("plans")


def default_workload() -> Path:
    return data_path("workloads", "default.jsonl")


def board_script(name: str) -> Path:
    return data_path("scripts", name)
