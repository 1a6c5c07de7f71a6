"""Where things live: the project root, build/, reports/, and the per-user download cache."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """EDGEBENCH_ROOT, else the checkout this package runs from, else the working directory.

    Tests point EDGEBENCH_ROOT at a temporary folder so that they never touch the user's
    build/ and reports/.
    """
    env = os.environ.get("EDGEBENCH_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parent.parent
    if (here / "Makefile").exists() and (here / "orchestrator").is_dir():
        return here
    return Path.cwd()


def build_dir() -> Path:
    return project_root() / "build"


def ledger_path(root: Path | None = None) -> Path:
    """build/ledger.json: what bootstrap did (the binary, the model), read by doctor, run and workloads."""
    return (root or project_root()) / "build" / "ledger.json"


def reports_dir() -> Path:
    return project_root() / "reports"


def cache_dir() -> Path:
    """Downloads shared by every clone on this machine, so a second clone downloads nothing."""
    env = os.environ.get("EDGEBENCH_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "edgebench"


def unwritable(folder: Path) -> Path | None:
    """The folder that stops edgebench creating `folder` or files in it (the folder itself, or
    the nearest parent that exists), or None when it can. A read-only disk or mount answers
    here even for root, whom permission bits would not stop."""
    p = Path(folder).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return None if os.access(p, os.W_OK | os.X_OK) else p
