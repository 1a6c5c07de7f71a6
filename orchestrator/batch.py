"""An unattended batch: find this batch's unfinished run and finish it before starting a new
one, and end with one summary line in its log for cron mail. (The session stops any run before
a query the disk has no room for: orchestrator.diskspace.)

A batch is known by its name and its arguments; the run folders it creates record both in
their manifest (`"batch": {"name", "args"}`), so the next batch finds the one a crash, a
reboot or a full disk left unfinished, whatever its folder is called.
"""

from __future__ import annotations

import datetime as dt
import io
import os
from pathlib import Path

from orchestrator.errors import UserError


def find_unfinished(reports: Path, name: str, args: list[str]) -> Path | None:
    """The newest run of this batch with planned measurements not yet recorded."""
    from orchestrator.runs import batch_runs, read_run

    for path in reversed(batch_runs(reports, name, args)):
        info = read_run(path)
        if info and info.total is not None and info.done < info.total:
            return path
    return None


def _resume_own(found: Path, name: str, args: list[str], reopen):
    """`reopen()` this batch's unfinished folder; a refused resume (binary, model or machine
    changed) names --fresh, which leaves that folder as it is."""
    try:
        return reopen()
    except UserError as exc:
        raise UserError(exc.message, fix=f"restore what changed, or edgebench batch --name {name} --fresh -- "
                                         f"{' '.join(args)} to start a new run ({found} stays)") from None


def open_run(name: str, args: list[str], params: dict, fresh: bool, log):
    """(session, resumed): this batch's unfinished run, else a new one that records the batch.
    `params`: `run`'s options as parsed from `args`."""
    from orchestrator import runconfig
    from orchestrator.session import Session

    cfg = runconfig.from_options(params)
    found = None if fresh else find_unfinished(cfg.out_dir, name, args)
    if found:
        return _resume_own(found, name, args, lambda: Session.resume(found, log=log)), True
    return Session.create(cfg, warmup=params["warmup"], repeat=params["repeat"], log=log,
                          extra_manifest={"batch": {"name": name, "args": list(args)}}), False


def open_experiment(name: str, args: list[str], params: dict, fresh: bool, log):
    """(session, resumed) for one experiment plan, with the plan's hooks (gating, discarded
    readings) on a resumed run as on a new one. `params`: `experiment`'s options."""
    from orchestrator import runconfig
    from orchestrator.experiments import plans
    from orchestrator.experiments import runner as xrun

    base = runconfig.from_options(params)
    found = None if fresh else find_unfinished(base.out_dir, name, args)
    if found:
        return _resume_own(found, name, args, lambda: xrun.resume(found, log=log)), True
    plan = plans.load(params["plan_file"] or plans.find(params["name"]))
    res = xrun.resolve(plan, base, repeat=params["repeat"])
    gating = xrun.gating(params["cooldown"], params["max_temp"], params["temp_timeout"])
    return xrun.start(res, gating=gating, log=log, extra_manifest={"batch": {"name": name, "args": list(args)}}), False


# what a batch runs -> opener(name, args, params, fresh, log) -> (Session, resumed)
OPENERS = {"run": open_run, "experiment": open_experiment}


def summary_line(name: str, what: str, code: int, *, run_dir: Path | None = None, records: list[dict] | None = None,
                 ran: int | None = None, total: int | None = None, note: str | None = None) -> str:
    """One line for the log and for cron mail: when, what ran, ok/failed, folder, exit code."""
    stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    parts = [f"{stamp} batch {name} ({what})"]
    if records is not None:
        ok = sum(1 for r in records if r.get("status") == "ok")
        counts = f"{ok} ok, {len(records) - ok} failed"
        if total is not None:
            counts += f", {len(records)}/{total} recorded"
        if ran is not None:
            counts += f", {ran} this batch"
        parts.append(counts)
    if run_dir is not None:
        parts.append(f"run {run_dir}")
    if note:
        parts.append(note)
    parts.append(f"exit {code}")
    return " ".join(" | ".join(parts).splitlines())


def append_log(log: Path, line: str) -> None:
    """One write of one line; O_APPEND keeps it whole beside the batch's own redirected output."""
    log.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode("utf-8", "replace"))
    finally:
        os.close(fd)


def same_file(stream, path: Path) -> bool:
    """Whether `stream` writes into `path` (cron's `>> log`): then a printed line is already logged."""
    try:
        a, b = os.fstat(stream.fileno()), os.stat(path)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)

