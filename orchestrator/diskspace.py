"""Room on the disk that holds a run: what a query will take, the check before it, and the one
message for a full disk (exit 1, the bytes needed, how to go on) whoever met it first: the
check, one of our writes, or the child's.

A query writes its raw files as it runs: llama.cpp's main.log (about 1 kB per generated token
on the a33e6a0 `main`, measured on the tiny twin: 15 kB at 8 tokens, 145 kB at 150, 401 kB at
400), stderr.log and the -ld YAML (a few kB), stream.json and stream.bin (tens of bytes per
token), then its record and samples. Before a run has a record of its own the estimate comes
from the query's token counts; from the first record on, the run's own average is used.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from orchestrator.errors import UserError

# Never start a query with less than this free, whatever the estimate says: the final manifest
# (a few kB), the record line and the samples of the query must still fit after it.
MIN_FREE_BYTES = 512 * 1024
# A query's raw files before its tokens: stderr.log, main.log's header (command line, model
# facts), the YAML's header, stream.json's argv (measured: about 30 kB), rounded up.
RAW_BASE_BYTES = 64 * 1024
# Per generated token: main.log logs each evaluated token with its text (measured 0.92 to 1.02 kB),
# plus the YAML, stream files and record; rounded up. Prompt tokens are logged a few times each.
RAW_BYTES_PER_OUTPUT_TOKEN = 1536
RAW_BYTES_PER_PROMPT_TOKEN = 256
# Keep room for this many queries' worth beyond the next one: the record, its samples and the
# manifest's final rewrite must never be the write that meets a full disk.
MARGIN_QUERIES = 1
# With this much free (and 16 queries' worth of the token-based budget) the run's own average,
# which walks the run folder, is not worth reading: no query takes anywhere near it.
PLENTY_BYTES = 64 * 1024 * 1024


class DiskFull(UserError):
    """The disk holding the run has no room for the next query; exit 1, nothing recorded lost."""


def query_bytes(max_tokens: int, prompt_tokens: int | None) -> int:
    """What one query's raw files and record take before this run has measured one."""
    return (RAW_BASE_BYTES + RAW_BYTES_PER_OUTPUT_TOKEN * max(0, max_tokens)
            + RAW_BYTES_PER_PROMPT_TOKEN * max(0, prompt_tokens or 0))


def per_query_bytes(run_dir: Path, first_guess: int) -> tuple[int, bool]:
    """(bytes one query costs this run on disk, whether that comes from the run's own records).
    `first_guess` (query_bytes of a planned query) stands in while nothing is recorded."""
    from orchestrator.runs import folder_size
    from orchestrator.store import MANIFEST, RunReader

    n = len(RunReader(run_dir).queries())
    if not n:
        return first_guess, False
    used = folder_size(run_dir) - (run_dir / MANIFEST).stat().st_size
    return max(used // n, 4096), True


def needed(each: int) -> int:
    return max(MIN_FREE_BYTES, each * (1 + MARGIN_QUERIES))


def free_bytes(path: Path) -> int:
    st = os.statvfs(existing(path))
    return st.f_bavail * st.f_frsize


def is_enospc(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def existing(path: Path) -> Path:
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def disk_full(run_dir: Path | None, pending: int, out_dir: Path, again: str, first_guess: int) -> DiskFull:
    """The stop message: free space, what the measurements left need, and how to go on.
    `again` is the command that continues (a resume, or the batch run again)."""
    from orchestrator.runs import human_size
    from orchestrator.store import MANIFEST

    started = run_dir is not None and (run_dir / MANIFEST).exists()
    each, own = per_query_bytes(run_dir, first_guess) if started else (first_guess, False)
    fix = (f"free at least {human_size(needed(each))} on that disk (edgebench runs prune --keep N deletes old "
           f"runs), then {again}")
    if not started:
        return DiskFull(f"the disk holding {out_dir} is full ({human_size(free_bytes(out_dir))} free, a query "
                        f"needs about {human_size(needed(each))}): no run folder could be written", fix=fix)
    source = "from this run's own files" if own else "estimated from the query's token counts"
    return DiskFull(f"the disk holding {run_dir} is full: {human_size(free_bytes(run_dir))} free, and the "
                    f"{pending} measurement{'s' if pending != 1 else ''} left need about "
                    f"{human_size(each * pending)} ({human_size(each)} each, {source}); a measurement starts only "
                    f"with {human_size(needed(each))} free, room for itself and one more; the records so far are "
                    "intact", fix=fix)


def check_room(run_dir: Path, pending: int, again: str, first_guess: int) -> None:
    """Raise DiskFull before a query that would not fit, rather than let it fail half-written."""
    if pending <= 0:
        return
    free = free_bytes(run_dir)
    if free >= max(PLENTY_BYTES, 16 * needed(first_guess)):
        return  # no need to walk a big run's folder before every query
    each, _ = per_query_bytes(run_dir, first_guess)
    if free < needed(each):
        raise disk_full(run_dir, pending, run_dir.parent, again, first_guess)
