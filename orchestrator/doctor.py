"""What is here (platform, llama.cpp build, model), checked against the files themselves, and
for anything missing the command that fixes it. `edgebench doctor` prints it."""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator import envvars, paths


def gather() -> dict:
    from orchestrator import runfacts, sysinfo
    from orchestrator.bootstrap.llama_source import COMMIT

    root = paths.project_root()
    llama_dir = runfacts.llama_dir()
    info = sysinfo.detect(root)
    fixes: list[str] = []

    src = runfacts.source_facts(llama_dir)
    has_tree, commit, patch = src["has_source"], src["commit"], src["patch_state"]
    main_bin = runfacts.default_binary()
    binary = str(main_bin) if main_bin.is_file() and os.access(main_bin, os.X_OK) else None
    build = runfacts.ledger_entry("build") or {}
    model = runfacts.ledger_entry("model") or {}
    model_ok = bool(model) and Path(model["path"]).is_file()

    if not has_tree:
        fixes.append("llama.cpp source missing: make bootstrap")
    elif commit is None:
        fixes.append(f"build/llama.cpp is not commit {COMMIT}: edgebench bootstrap --redo llama-source")
    if has_tree and patch != "applied":
        fixes.append(f"Nano patch {patch}: edgebench bootstrap --redo patch")
    if binary is None:
        fixes.append("llama.cpp main not built: make bootstrap")
    if not model_ok:
        fixes.append("no model: make bootstrap (or edgebench bootstrap --model PATH)")
    blocked = paths.unwritable(paths.reports_dir())
    if blocked is not None:
        fixes.append(f"{blocked} is not writable (a read-only disk or its permissions), so run and report cannot "
                     f"write {paths.reports_dir()}: edgebench run --reports-dir DIR on a writable disk, or make it "
                     "writable")

    return {
        "root": str(root),
        "platform": info,
        "profile": info["profile"],
        "python": info["python"],
        "disk_free_bytes": info["disk_free_bytes"],
        "llama_dir": str(llama_dir) if has_tree else None,
        "llama_binary": binary,
        "llama_commit": commit,
        "llama_source": (runfacts.ledger_entry("llama-source") or {}).get("method"),
        "patch_applied": patch == "applied",
        "patch_state": patch,
        "build_flags": {k: build[k] for k in runfacts.BUILD_FLAG_KEYS if k in build},
        "model_path": model.get("path") if model_ok else None,
        "model_sha256": model.get("sha256") if model_ok else None,
        "model_synthetic": model.get("synthetic") if model_ok else None,
        "model_source": model.get("source") if model_ok else None,
        "model_gguf": model.get("gguf") if model_ok else None,
        "llama_current": current_build(),
        "gcc": _pick(runfacts.ledger_entry("gcc"), "version", "prefix", "method"),
        "cuda": _pick(runfacts.ledger_entry("cuda-probe"), "cuda_home", "nvcc_version", "compute_capability", "arch"),
        "jetson_stats": _pick(runfacts.ledger_entry("jetson-stats"), "service_version", "env_version",
                              "relogin_needed"),
        "environment": {name: value for name, value, _ in envvars.set_now()},
        "problems": fixes,
        "ok": not fixes,
    }


def current_build() -> dict:
    """Today's llama.cpp (bootstrap --engine current), beside the a33e6a0 build: what the ledger
    recorded, each binary checked against its recorded SHA-256. Not a problem when absent: only
    `run --engine completion` needs it."""
    from orchestrator import net, runfacts
    from orchestrator.bootstrap import llama_current

    entry = runfacts.ledger_entry(llama_current.LlamaCurrent.name) or {}
    binaries = {}
    for target in llama_current.TARGETS:
        path = llama_current.bin_dir(paths.build_dir()) / target
        recorded = (entry.get("binaries") or {}).get(target, {}).get("sha256")
        ok = path.is_file() and os.access(path, os.X_OK) and recorded == net.sha256_file(path)
        binaries[target] = str(path) if ok else None
    return {"built": bool(entry) and all(binaries.values()), "binaries": binaries,
            **{k: entry.get(k) for k in ("commit", "commit_source", "origin", "sdist_sha256", "backend",
                                         "cmake_options", "compiler")}}


def _pick(entry: dict | None, *keys: str) -> dict | None:
    """What a board-only bootstrap step recorded (None where that step is not part of the profile)."""
    return {k: entry.get(k) for k in keys} if entry else None
