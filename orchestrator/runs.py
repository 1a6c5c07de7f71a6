"""The run folders under reports/: what each holds, and pruning the old ones on a small card.

Read-only except `prune`, which deletes whole folders and never one a process is writing:
a run is active when the measurement lock's holder names it and is alive, when its own
folder lock is held, or when its manifest says `running` and the PID it names is alive.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import UserError
from orchestrator.measurelock import live_holder, pid_alive
from orchestrator.store import LOCK, MANIFEST


@dataclass(frozen=True)
class RunInfo:
    path: Path
    created_at: str
    status: str  # running | finished | interrupted | killed (no final state: SIGKILL or power loss)
    done: int
    total: int | None
    size_bytes: int
    batch: str | None
    active: bool


def progress(manifest: dict, records: list[dict]) -> tuple[int, int | None]:
    """(planned measurements with a record, planned measurements). A failed attempt is a
    result and counts as done; a format 1 run plans one measurement per workload query."""
    from orchestrator.store import record_key

    keys = {record_key(r) for r in records}
    items = (manifest.get("plan") or {}).get("items")
    if items is None:
        queries = (manifest.get("workload") or {}).get("queries")
        return len({r["query_id"] for r in records}), (len(queries) if queries is not None else None)
    planned = {(i["query_id"], _variant_id(i.get("variant") or {}), i.get("phase", "measure"),
                int(i.get("repetition", 0))) for i in items}
    return len(planned & keys), len(planned)


def _variant_id(variant: dict) -> str:
    from orchestrator.planning import variant_id

    return variant_id(variant)


def folder_size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
            except OSError:
                pass  # removed while we walk: a run still writing
    return total


def _store_locked(path: Path) -> bool:
    import filelock

    if not (path / LOCK).exists():
        return False
    lock = filelock.FileLock(str(path / LOCK), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        return True
    except OSError:  # a folder we may not write (another user's, a read-only card): not ours to judge
        return False
    lock.release()
    return False


def is_active(path: Path, manifest: dict, holder: dict | None = None) -> bool:
    holder = live_holder() if holder is None else holder
    if holder.get("run_dir") and Path(holder["run_dir"]).resolve() == path.resolve():
        return True
    if manifest.get("status") == "running" and pid_alive((manifest.get("harness") or {}).get("pid")):
        return True
    return _store_locked(path)


def read_run(path: Path, holder: dict | None = None, unreadable: list[str] | None = None) -> RunInfo | None:
    """None for a folder that is not a run (reports/cron, reports/bench) or cannot be read; the
    reason for the latter goes to `unreadable`."""
    from orchestrator.store import RunReader

    if not (path / MANIFEST).is_file():
        return None
    try:
        reader = RunReader(path)
        records = reader.queries()
    except UserError as exc:
        if unreadable is not None:
            unreadable.append(f"{path.name}: {exc.message}")
        return None
    m = reader.manifest
    active = is_active(path, m, holder)
    status = m.get("status") or "unknown"
    if active:
        status = "running"
    elif status == "running":
        status = "killed"
    done, total = progress(m, records)
    return RunInfo(path, m.get("created_at") or "", status, done, total, folder_size(path),
                   (m.get("batch") or {}).get("name"), active)


def list_runs(reports: Path, unreadable: list[str] | None = None) -> list[RunInfo]:
    """Oldest first (run ids sort by start time). A run folder that cannot be read is left out,
    and the reason goes to `unreadable`."""
    if not reports.is_dir():
        return []
    holder = live_holder()
    out = [read_run(p, holder, unreadable) for p in sorted(reports.iterdir()) if p.is_dir()]
    return sorted((r for r in out if r), key=lambda r: (r.created_at, r.path.name))


def prune(reports: Path, keep: int, dry_run: bool = False) -> tuple[list[RunInfo], list[RunInfo], list[str]]:
    """Delete all but the `keep` newest runs. Returns (removed, spared because active, notes on
    the folders left alone for another reason).

    Every folder is judged before the first is deleted, so a folder prune cannot delete never
    stops it half-way. A symbolic link is never followed nor deleted: what it points to may be
    a run kept elsewhere on purpose (another card, a shared folder), and removing only the link
    frees nothing; the note says how to delete it by hand."""
    runs = list_runs(reports)
    old = runs[: max(0, len(runs) - keep)]
    doomed, spared, notes = [], [], []
    for r in old:
        if r.path.is_symlink():
            notes.append(f"kept {r.path.name}: it is a symbolic link to {os.path.realpath(r.path)}, which prune does "
                         f"not follow; rm {r.path} removes the link, rm -r the folder it names removes the run")
            continue
        if not os.access(r.path.parent, os.W_OK | os.X_OK) or not os.access(r.path, os.W_OK | os.X_OK):
            notes.append(f"kept {r.path.name}: this user may not delete it (permissions, or a read-only disk)")
            continue
        doomed.append(r)
    removed = []
    for r in doomed:
        # read again right before deleting: a batch may have resumed it since the listing
        fresh = read_run(r.path)
        if fresh is None or fresh.active:
            spared.append(r)
            continue
        if not dry_run:
            try:
                shutil.rmtree(r.path)
            except OSError as exc:
                notes.append(f"could not delete all of {r.path.name}: {exc.strerror or exc} "
                             f"({exc.filename or r.path}); what is left there is not a complete run")
                continue
        removed.append(r)
    return removed, spared, notes


def batch_runs(reports: Path, name: str, args: list[str]) -> list[Path]:
    """Run folders a batch of this name and these arguments created, oldest first."""
    if not reports.is_dir():
        return []
    out = []
    for p in sorted(reports.iterdir()):
        try:
            m = json.loads((p / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(m, dict) and m.get("batch") == {"name": name, "args": list(args)}:
            out.append(p)
    return out


def human_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"
