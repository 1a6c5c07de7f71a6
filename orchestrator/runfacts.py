"""What a run is measured with, read from the files themselves: the llama.cpp binary and the tree
it was built in (commit, Nano patch, bootstrap's build record), the model (figures, digest, where it
came from), the platform and the board. A run's manifest records these facts, a resume compares
them, and `edgebench doctor` shows them: all three read them here, one way.

Bootstrap's ledger (build/ledger.json) is where the provenance lives; this module is the one
place outside bootstrap/ that reads it.
"""

from __future__ import annotations

import resource
from pathlib import Path

from orchestrator import paths
from orchestrator.errors import UserError

# How bootstrap built the binaries, as the manifest and doctor both show it (one list, so they agree)
BUILD_FLAG_KEYS = ("make_vars", "backend", "compiler", "jobs", "targets", "build_info")
SOURCES_DIFFER = "unknown (sources differ from a33e6a0)"


# -- where things are by default ----------------------------------------------------------
def llama_dir() -> Path:
    return paths.build_dir() / "llama.cpp"


def default_binary(engine: str = "main") -> Path:
    """Where bootstrap puts the program of `engine` (engine/registry.py)."""
    from orchestrator.engine import registry

    return registry.default_binary(engine, paths.build_dir())


def default_model() -> Path:
    entry = ledger_entry("model")
    if not entry:
        raise UserError("no model has been set up in this checkout", fix="make bootstrap, or --model PATH")
    return Path(entry["path"])


def default_workload() -> Path:
    from orchestrator import packaged

    return packaged.default_workload()


# -- provenance: bootstrap's ledger and the llama.cpp tree ----------------------------------
def ledger_entry(step: str, ledger: Path | None = None) -> dict | None:
    """What bootstrap recorded for `step` (None when it did not run, or there is no ledger)."""
    from orchestrator.bootstrap.ledger import Ledger

    path = ledger or paths.ledger_path()
    return Ledger(path).get(step) if path.is_file() else None


def source_facts(tree: Path) -> dict:
    """The llama.cpp tree `tree`: has_source, commit (a33e6a0, or None when the files differ
    from it) and the Nano patch's state (None without a tree)."""
    if not (tree / "Makefile").is_file():
        return {"has_source": False, "commit": None, "patch_state": None}
    from orchestrator.bootstrap.llama_source import COMMIT, fingerprint_mismatches
    from orchestrator.bootstrap.patch import patch_state

    return {"has_source": True, "commit": None if fingerprint_mismatches(tree) else COMMIT,
            "patch_state": patch_state(tree)}


def binary_facts(binary: Path) -> dict:
    """A manifest's `binary`: path, digest, the tree's commit and patch, and bootstrap's build
    flags when bootstrap built this very file (same SHA-256) in that tree."""
    from orchestrator.net import sha256_file

    tree = binary.parent
    out = {"path": str(binary), "sha256": sha256_file(binary), "commit": None, "patch_state": None,
           "build_flags": None}
    src = source_facts(tree)
    if src["has_source"]:
        out["commit"] = src["commit"] or SOURCES_DIFFER
        out["patch_state"] = src["patch_state"]
    build = ledger_entry("build", tree.parent / paths.ledger_path().name) or {}
    # any program bootstrap built in that tree (main, or the server beside it), known by its digest
    if any(b.get("sha256") == out["sha256"] for b in (build.get("binaries") or {}).values()):
        out["build_flags"] = {k: build.get(k) for k in BUILD_FLAG_KEYS}
    return out


def model_facts(model: Path, model_info: dict) -> dict:
    """A manifest's `model`: the GGUF's figures (`model_info`, ggufile.read_info), its digest, and
    where it came from (bootstrap's download, the twin that stood in when Hugging Face did not
    answer, or the user's own file)."""
    from orchestrator.bootstrap.model import provenance
    from orchestrator.net import sha256_file

    sha = sha256_file(model)
    return {**model_info, "sha256": sha, **provenance(sha, paths.ledger_path())}


# -- the machine -----------------------------------------------------------------------------
def platform(disk_path: Path) -> dict:
    """sysinfo.detect, its free-disk figure taken where the run writes (or here, before it exists)."""
    from orchestrator import sysinfo

    return sysinfo.detect(disk_path if disk_path.exists() else Path.cwd())


def board_state() -> dict:
    from orchestrator.board import read_board_state

    return read_board_state()


def harness_usage() -> dict:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"peak_rss_bytes": ru.ru_maxrss * 1024, "cpu_s": ru.ru_utime + ru.ru_stime}
