"""`edgebench doctor`: what is here, checked against the files themselves, and for anything
missing the command that fixes it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from orchestrator import paths


def gather() -> dict:
    from orchestrator import sysinfo
    from orchestrator.bootstrap.cli import ledger_path
    from orchestrator.bootstrap.ledger import Ledger
    from orchestrator.bootstrap.llama_source import COMMIT, fingerprint_mismatches
    from orchestrator.bootstrap.patch import patch_state

    root = paths.project_root()
    ledger = Ledger(ledger_path(root))
    llama_dir = root / "build" / "llama.cpp"
    info = sysinfo.detect(root)
    fixes: list[str] = []

    has_tree = (llama_dir / "Makefile").is_file()
    commit = COMMIT if has_tree and not fingerprint_mismatches(llama_dir) else None
    patch = patch_state(llama_dir) if has_tree else None
    main_bin = llama_dir / "main"
    binary = str(main_bin) if main_bin.is_file() and os.access(main_bin, os.X_OK) else None
    build = ledger.get("build") or {}
    model = ledger.get("model") or {}
    model_ok = bool(model) and Path(model["path"]).is_file()

    if not has_tree:
        fixes.append("llama.cpp source missing: make bootstrap")
    elif commit is None:
        fixes.append(f"build/llama.cpp is not commit {COMMIT}: edgebench bootstrap --force llama-source")
    if has_tree and patch != "applied":
        fixes.append(f"Nano patch {patch}: edgebench bootstrap --force patch")
    if binary is None:
        fixes.append("llama.cpp main not built: make bootstrap")
    if not model_ok:
        fixes.append("no model: make bootstrap (or edgebench bootstrap --model PATH)")

    return {
        "root": str(root),
        "platform": info,
        "profile": info["profile"],
        "python": info["python"],
        "disk_free_bytes": info["disk_free_bytes"],
        "llama_dir": str(llama_dir) if has_tree else None,
        "llama_binary": binary,
        "llama_commit": commit,
        "llama_source": (ledger.get("llama-source") or {}).get("method"),
        "patch_applied": patch == "applied",
        "patch_state": patch,
        "build_flags": {k: build[k] for k in ("make_vars", "backend", "compiler", "jobs", "targets") if k in build},
        "model_path": model.get("path") if model_ok else None,
        "model_sha256": model.get("sha256") if model_ok else None,
        "model_synthetic": model.get("synthetic") if model_ok else None,
        "model_source": model.get("source") if model_ok else None,
        "model_gguf": model.get("gguf") if model_ok else None,
        "gcc": _pick(ledger.get("gcc"), "version", "prefix", "method"),
        "cuda": _pick(ledger.get("cuda-probe"), "cuda_home", "nvcc_version", "compute_capability", "arch"),
        "jetson_stats": _pick(ledger.get("jetson-stats"), "service_version", "env_version", "relogin_needed"),
        "problems": fixes,
        "ok": not fixes,
    }


def _pick(entry: dict | None, *keys: str) -> dict | None:
    """What a board-only bootstrap step recorded (None where that step is not part of the profile)."""
    return {k: entry.get(k) for k in keys} if entry else None


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def doctor(as_json):
    """Report the platform, the llama.cpp build and the model; say how to fix what is missing."""
    d = gather()
    if as_json:
        click.echo(json.dumps(d, indent=2, sort_keys=True))
        return
    p = d["platform"]
    gib = 1 << 30
    lines = [
        f"platform      {p['system']} {p['machine']}, {p['cpu_model']}, {p['cpu_count']} cores, "
        f"{(p['mem_total_bytes'] or 0) / gib:.1f} GiB RAM, profile {d['profile']}",
        f"jetson        {p['jetson_model'] or 'no'}{'  L4T ' + p['l4t_release'] if p['l4t_release'] else ''}",
        f"cuda          {p['cuda_version'] or 'none'}",
        f"python        {d['python']} ({p['python_executable']})",
        f"free disk     {d['disk_free_bytes'] / gib:.1f} GiB under {d['root']}",
        f"llama.cpp     {d['llama_dir'] or 'missing'}  commit {d['llama_commit'] or '?'}"
        f"  (from {d['llama_source'] or '?'})",
        f"patch         {d['patch_state'] or 'n/a'}",
        f"binary        {d['llama_binary'] or 'missing'}",
        f"build flags   {d['build_flags'] or 'n/a'}",
        f"model         {d['model_path'] or 'missing'}"
        + (f"  ({'SYNTHETIC timing twin' if d['model_synthetic'] else d['model_source']})" if d["model_path"] else ""),
        f"model sha256  {d['model_sha256'] or 'n/a'}",
    ]
    if d["profile"] != "host":
        lines += [
            f"gcc           {d['gcc'] or 'not built (make bootstrap)'}",
            f"cuda probe    {d['cuda'] or 'not run (make bootstrap)'}",
            f"jetson-stats  {d['jetson_stats'] or 'not installed (make bootstrap)'}",
        ]
        if (d["jetson_stats"] or {}).get("relogin_needed"):
            lines.append("              log out and back in: you were just added to group jtop")
    click.echo("\n".join(lines))
    if d["problems"]:
        click.echo("\nto fix:")
        for f in d["problems"]:
            click.echo(f"  - {f}")
    else:
        click.echo("\nall good: edgebench can run")
