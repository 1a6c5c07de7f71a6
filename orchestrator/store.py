"""The run folder: one folder per run that a crash, a kill or a power cut never corrupts.

    reports/<run_id>/
        manifest.json    what was run, how, on what; rewritten atomically (temp + rename)
        queries.jsonl    one line per finished query attempt: the commit marker
        samples.jsonl    one line per sampler reading, tagged with query_id and attempt
        raw/<query>/<item>/  one attempt's raw files (the stream, llama.cpp's YAML and logs), adopted
                         from the engine's scratch folder with one rename once it has run
        .scratch/        the engines' working folders while a query runs; not data

Every name of a file or folder in a run folder is spelled here, and only here
(tests/test_run_folder_names.py): writers and readers import these constants.

Append-only files are written a whole line per write() and fsynced before the call returns
(hyperfine: results are on disk after every benchmark). The runner writes an attempt's
samples first and its query record last, so a query record is the commit marker: samples
of an attempt that has no record (killed mid-query) are left in the file and filtered out
by `RunReader.samples()`. A kill can tear only the last line; `open()` cuts it off.

JSON lines are split on b"\\n" only: with ensure_ascii=False a record may hold U+2028 or
U+0085, which str.splitlines() would treat as line breaks.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import secrets
import shutil
import unicodedata
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import filelock

from orchestrator import fields as F
from orchestrator.errors import UserError
from orchestrator.fsutil import atomic_write, fsync_dir

SCHEMA_VERSION = 2
# Version 1 folders (one measured attempt per query, no phase/repetition/variant) are read as
# if every record were phase "measure", repetition 0, variant {}; they are never resumed.
READABLE_VERSIONS = (1, 2)

MANIFEST = "manifest.json"
# The manifest's facts of the engine: engine/base.py info(), and what its open() learnt.
MANIFEST_ENGINE = "engine"
QUERIES = "queries.jsonl"
SAMPLES = "samples.jsonl"
RAW = "raw"
LOCK = ".lock"  # held by the one process writing the folder
SCRATCH = ".scratch"
# An attempt's raw files, in raw/<query>/<item>/. main.log is the name main gives its own log in
# its working folder, kept as it is.
RAW_STREAM = "stream.bin"  # stdout's bytes as the engine wrote them: prompt echo, then output
RAW_STREAM_INDEX = "stream.json"  # t_spawn_ns, the argv, each chunk's arrival (ns after spawn) and length
RAW_ENGINE_YAML = "llama.yml"
RAW_STDERR = "stderr.log"
RAW_MAIN_LOG = "main.log"
# What the report and the summary write into the run folder beside the data.
REPORT_HTML = "report.html"
SUMMARY_HTML = "summary.html"
SUMMARY_JSON = "summary.json"
QUERIES_CSV = "queries.csv"
QUERIES_PARQUET = "queries.parquet"
QUERY_PAGE = "queries-{}.html"  # the report's pages of every attempt, numbered from 1

# What every query record holds: resume keys on query_id, samples are filtered by attempt,
# statistics group by category and status. A line without them is refused where it is read;
# every other declared field (orchestrator/fields.py) must have its declared type or be null.
RECORD_REQUIRED = (F.QUERY_ID, F.ATTEMPT, F.STATUS, F.CATEGORY)
SAMPLE_REQUIRED = (F.R_QUERY_ID, F.R_ATTEMPT)
# Declared fields whose shape earlier writers chose differently, read as they come: `samplers`
# was an object of per-sampler facts in format 1 and in the committed Nano run.
_SHAPE_VARIES = {F.SAMPLERS}
# kind -> (required string fields, the declarations whose types are checked)
_KINDS = {"query record": (RECORD_REQUIRED, {k: f for k, f in F.RECORD.items() if k not in _SHAPE_VARIES}),
          "sample": (SAMPLE_REQUIRED, {})}

OUT_ELSEWHERE = "--reports-dir DIR on a writable disk (e.g. --reports-dir ~/edgebench-reports)"


def new_run_id(now: datetime | None = None) -> str:
    """UTC time to the second plus 4 random hex digits: sorts by start time, and two runs
    started in the same second on one machine still get different folders. A naive `now`
    is taken to be UTC already."""
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is not None:
        now = now.astimezone(timezone.utc)
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


class RunStore:
    def __init__(self, run_dir: Path, manifest: dict):
        self.dir = Path(run_dir)
        self.manifest = manifest
        self._lock = filelock.FileLock(self.dir / LOCK, timeout=0)

    @classmethod
    def create(cls, run_dir: Path, manifest: dict) -> RunStore:
        run_dir = Path(run_dir)
        check_writable(run_dir, OUT_ELSEWHERE)
        if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
            raise UserError(
                f"{run_dir} already exists and is not empty; a new run needs a folder of its own",
                fix=f"continue that run with --resume {run_dir}, or leave out the run folder to get a fresh one",
            )
        created = not run_dir.exists()
        run_dir.mkdir(parents=True, exist_ok=True)
        if created:
            fsync_dir(run_dir.parent)
        store = cls(run_dir, {"schema_version": SCHEMA_VERSION, **manifest})
        store.manifest["schema_version"] = SCHEMA_VERSION
        store._write_manifest()
        for name in (QUERIES, SAMPLES):
            (run_dir / name).touch()
        (run_dir / RAW).mkdir()
        fsync_dir(run_dir)
        return store

    @classmethod
    def open(cls, run_dir: Path) -> RunStore:
        """Open an existing run to resume it, cutting off a line torn by a crash. The path is made
        absolute: `main` runs in its scratch folder, where a relative one would name nothing."""
        run_dir = Path(run_dir).absolute()
        path = run_dir / MANIFEST
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(
                f"{run_dir} is not an edgebench run folder (it has no {MANIFEST})",
                fix="pass --resume the folder of the run to continue, reports/<run_id>/ (ls reports/)",
            ) from None
        except ValueError as e:
            raise UserError(
                f"{path} is not valid JSON ({e}); it is written atomically, so something else changed it",
                fix="restore it from a backup, or start a new run",
            ) from None
        version = manifest.get("schema_version") if isinstance(manifest, dict) else None
        if version != SCHEMA_VERSION:
            raise UserError(_version_message(run_dir, version, manifest, (SCHEMA_VERSION,), "resumes"),
                            fix=_version_fix(version))
        check_writable(run_dir, f"copy the run folder to a writable disk (cp -r {run_dir} ~/) and --resume the copy")
        store = cls(run_dir, manifest)
        # Under the lock: a run still writing here has an unfinished last line that is not
        # torn, and must not be cut.
        with store.lock():
            _check_records_present(run_dir)
            for name in (QUERIES, SAMPLES):
                _repair_tail(run_dir / name)
            # an engine's working folder of an attempt a kill cut short: it has no record, so no data
            shutil.rmtree(run_dir / SCRATCH, ignore_errors=True)
        # Every record is checked now, before a query runs: a bad line found after the run
        # would leave a manifest that says `finished` over a folder nothing can read.
        store.read_queries()
        return store

    @contextlib.contextmanager
    def lock(self) -> Iterator[RunStore]:
        """Hold <dir>/.lock while writing, so two processes never append to one run."""
        try:
            self._lock.acquire()
        except filelock.Timeout:
            raise UserError(
                f"another edgebench run is writing {self.dir}",
                fix="wait for it to finish (or stop it), or start a new run instead of --resume",
            ) from None
        try:
            yield self
        finally:
            self._lock.release()

    def update_manifest(self, **fields) -> None:
        if fields.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
            raise ValueError("schema_version is set by the store, not by its callers")
        self.manifest.update(fields)
        self._write_manifest()

    def raw_dir(self, query_id: str, leaf: str | None = None) -> Path:
        """raw/<slug>-<hash>/[leaf/]: readable, safe on any filesystem, and unique per id (the
        hash tells apart ids that slug alike, like "a/b" and "a:b", or differ only in case);
        `leaf` names one repetition or variant of the query. Only the path: keep_raw makes it."""
        path = self.dir / RAW / _safe_name(query_id)
        return path / _safe_name(leaf) if leaf else path

    def scratch(self, query_id: str, leaf: str) -> Path:
        """A new, empty working folder for the engine of one attempt, .scratch/<query>/<leaf>/
        (absolute: the engine's child runs in it). It is on the run folder's disk, so keep_raw
        adopts its files by renaming; one left by an attempt a kill cut short is emptied."""
        path = (self.dir / SCRATCH / _safe_name(query_id) / _safe_name(leaf)).absolute()
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def keep_raw(self, scratch: Path, query_id: str, leaf: str, files: dict[str, Path],
                 blobs: dict[str, bytes]) -> Path:
        """An attempt's raw folder, raw/<query>/<leaf>/, made of `files` (name -> a file in
        `scratch`; one the engine did not write is left out) and `blobs` (name -> bytes). It
        appears whole, by one rename, and replaces what an attempt without a record left there;
        the rest of `scratch` is dropped. Returns the folder."""
        staged = _staged(scratch)
        shutil.rmtree(staged, ignore_errors=True)
        staged.mkdir()
        for name, src in files.items():
            if src.is_file():
                os.replace(src, staged / name)
        for name, data in blobs.items():
            (staged / name).write_bytes(data)
        target = self.raw_dir(query_id, leaf)
        if target.exists():
            shutil.rmtree(target)
        elif not target.parent.is_dir():
            target.parent.mkdir(parents=True)
            fsync_dir(target.parent.parent)
        os.replace(staged, target)
        fsync_dir(target.parent)
        self.drop_scratch(scratch)
        return target

    def drop_scratch(self, scratch: Path) -> None:
        """Delete an attempt's working folder and what keep_raw staged from it."""
        for path in (scratch, _staged(scratch)):
            shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(OSError):  # emptied folders go: a finished run folder holds data only
            scratch.parent.rmdir()
            scratch.parent.parent.rmdir()

    def drop_attempt(self, folder: Path) -> None:
        """Delete the scratch or raw folder of an attempt that will have no record: not data."""
        if (self.dir / SCRATCH).absolute() in folder.absolute().parents:
            self.drop_scratch(folder)
        else:
            shutil.rmtree(folder, ignore_errors=True)

    def append_samples(self, query_id: str, attempt: str, samples: list[dict]) -> None:
        if not samples:
            return
        data = b"".join(_json_line({"query_id": query_id, "attempt": attempt, **s}) for s in samples)
        _append(self.dir / SAMPLES, data)

    def append_query(self, record: dict) -> None:
        """Commit one query attempt: one line, one write(), on disk before this returns. What
        the readers would refuse is refused here first."""
        problem = record_problem(record)
        if problem:
            raise ValueError(f"not a query record: {problem}")
        _append(self.dir / QUERIES, _json_line(record))

    def read_queries(self) -> list[dict]:
        return read_records(self.dir / QUERIES)

    def _write_manifest(self) -> None:
        text = json.dumps(self.manifest, indent=2, ensure_ascii=False, allow_nan=False, default=_json_default)
        atomic_write(self.dir / MANIFEST, (text + "\n").encode("utf-8"))
        # What the caller holds is then what a resume will read (paths become strings).
        self.manifest = json.loads(text)


def _staged(scratch: Path) -> Path:
    return scratch.with_name(scratch.name + ".raw")


def record_key(record: dict) -> tuple[str, str, str, int]:
    """What a record measured: (query id, variant id, phase, repetition). Resume runs each key
    exactly once; version 1 records read as one measured repetition of the base variant."""
    return (record["query_id"], record.get("variant_id", ""), record.get("phase", "measure"),
            int(record.get("repetition", 0)))


class RunReader:
    """Read-only view of a run folder, for reports and tools: takes no lock, writes nothing,
    and reads a folder that a run is still writing (an unterminated last line is an append
    in progress and is skipped in memory, never cut on disk). Reads format 1 and 2."""

    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir)
        path = self.dir / MANIFEST
        try:
            self.manifest = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"{self.dir} is not an edgebench run folder (it has no {MANIFEST})",
                            fix="pass the folder of a run, reports/<run_id>/ (ls reports/)") from None
        except ValueError as e:
            raise UserError(f"{path} is not valid JSON ({e})", fix="restore it from a backup") from None
        version = self.manifest.get("schema_version") if isinstance(self.manifest, dict) else None
        if version not in READABLE_VERSIONS:
            raise UserError(_version_message(self.dir, version, self.manifest, READABLE_VERSIONS),
                            fix=_version_fix(version))

    def queries(self) -> list[dict]:
        """Every finished attempt, with phase/repetition/variant filled in for format 1."""
        out = []
        for r in read_records(self.dir / QUERIES):
            r.setdefault("phase", "measure")
            r.setdefault("repetition", 0)
            r.setdefault("variant", {})
            r.setdefault("variant_id", "")
            out.append(r)
        return out

    def samples(self, attempts: set[str] | None = None) -> list[dict]:
        """Readings of committed attempts only (an attempt without a record was killed)."""
        if attempts is None:
            attempts = {r["attempt"] for r in read_records(self.dir / QUERIES)}
        return [r for r in _read_jsonl(self.dir / SAMPLES, "sample") if r["attempt"] in attempts]


def record_problem(record, kind: str = "query record") -> str | None:
    """What makes `record` unusable as a `kind` line (a sentence), or None when it is fine."""
    required, declared = _KINDS[kind]
    if not isinstance(record, dict):
        return f"it is a JSON {_json_kind(record)}, not an object"
    for key in required:
        if key not in record:
            return f"it has no {key!r}"
        if not isinstance(record[key], str):
            return f"its {key!r} is a JSON {_json_kind(record[key])}, not a string"
    for key, value in record.items():
        field = declared.get(key)
        if field is None or value is None or _fits(value, field.type):
            continue
        if isinstance(value, list) and field.type.startswith("list["):
            bad = next(x for x in value if not _fits([x], field.type))
            return f"its {key!r} is not {_TYPE_NAMES[field.type]} (it holds a JSON {_json_kind(bad)})"
        return f"its {key!r} is a JSON {_json_kind(value)}, not {_TYPE_NAMES[field.type]}"
    return None


# A declared type (fields.Field.type) and what JSON holds it. Integers and floats are both
# numbers: JSON does not tell 1 from 1.0, and a reader does arithmetic on either.
_TYPE_NAMES = {"str": "a string", "int": "a number", "float": "a number", "bool": "true or false",
               "dict": "an object", "list[float]": "an array of numbers", "list[str]": "an array of strings"}


def _is_number(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _fits(value, declared: str) -> bool:
    if declared in ("int", "float"):
        return _is_number(value)
    if declared == "list[float]":
        return isinstance(value, list) and all(_is_number(x) for x in value)
    if declared == "list[str]":
        return isinstance(value, list) and all(isinstance(x, str) for x in value)
    kind = {"str": str, "bool": bool, "dict": dict}.get(declared)
    return kind is None or isinstance(value, kind)


def _json_kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if _is_number(value):
        return "number"
    return {str: "string", dict: "object", list: "array"}.get(type(value), type(value).__name__)


def read_records(path: Path) -> list[dict]:
    """Every complete query record of `path`, each checked: one bad line raises UserError
    "FILE, line N, ..." with the fix, as a line that is not JSON does."""
    return list(_read_jsonl(path, "query record"))


def _version_message(run_dir: Path, version, manifest: dict, accepted=(SCHEMA_VERSION,), verb="reads") -> str:
    writer = manifest.get("edgebench_version") if isinstance(manifest, dict) else None
    by = f" by edgebench {writer}" if writer else ""
    if isinstance(version, int) and version > SCHEMA_VERSION:
        age = "a newer"
    elif isinstance(version, int):
        age = "an older"
    else:
        age = "an unknown"
    return (
        f"{run_dir} was written{by} in {age} run-folder format (schema_version {version!r}); "
        f"this edgebench {verb} format {' and '.join(map(str, accepted))} only"
    )


def _version_fix(version) -> str:
    if isinstance(version, int) and version > SCHEMA_VERSION:
        return "update edgebench (git pull && make venv) to resume it, or start a new run"
    return "start a new run (a run cannot be resumed across formats), or resume it with the edgebench that wrote it"


def _safe_name(query_id: str) -> str:
    ascii_id = unicodedata.normalize("NFKD", query_id).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_id).strip("._-")[:60] or "q"
    digest = hashlib.sha256(query_id.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{slug}-{digest}"


def _json_default(obj):
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable: {obj!r}")


def _json_line(obj: dict) -> bytes:
    """One JSON line: escapes keep newlines inside strings off the line, and NaN/inf are
    refused because they are not JSON and a strict reader would fail on the whole file."""
    try:
        text = json.dumps(obj, ensure_ascii=False, allow_nan=False, default=_json_default)
    except ValueError:
        where = _nonfinite_path(obj, "record")
        if where is None:
            raise  # not a float problem (a circular reference)
        raise ValueError(f"{where} is NaN or infinite, which JSON cannot hold; store null instead") from None
    try:
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates (bytes decoded with surrogateescape) are not UTF-8; \\u escapes
        # keep them, and Python reads them back unchanged.
        text = json.dumps(obj, ensure_ascii=True, allow_nan=False, default=_json_default)
        return (text + "\n").encode("ascii")


def _nonfinite_path(obj, path: str) -> str | None:
    if isinstance(obj, float) and not math.isfinite(obj):
        return path
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list | tuple) else ()
    for key, value in items:
        found = _nonfinite_path(value, f"{path}[{key!r}]")
        if found:
            return found
    return None


def _append(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        start = os.fstat(fd).st_size
        view = memoryview(data)
        try:
            while view:  # a regular file takes it all in one write unless a signal cuts it short
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError:
            # A full disk can take part of the line: cut it off, so that the file ends on a
            # whole record and a later append (after room was made) is not glued to a fragment.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
            raise
    finally:
        os.close(fd)


def append_lines(path: Path, rows: list[dict]) -> None:
    """Rows as JSON lines, in one write, fsync'd before this returns (another folder's jsonl: `edgebench load`)."""
    if rows:
        _append(Path(path), b"".join(_json_line(r) for r in rows))


def read_lines(path: Path) -> list[dict]:
    """Every complete line of a file append_lines wrote: a torn last line is an append a crash cut short."""
    return list(_read_jsonl(Path(path)))


def check_writable(folder: Path, fix: str) -> None:
    """UserError naming the folder and `fix` when `folder` cannot be created or written."""
    from orchestrator.paths import unwritable

    blocked = unwritable(folder)
    if blocked is not None:
        raise UserError(f"cannot write into {blocked}: it is read-only for this user (a read-only disk or mount, "
                        "or its permissions)", fix=fix)


def _check_records_present(run_dir: Path) -> None:
    """queries.jsonl is what says which queries were measured: without it a resume would measure
    everything again over the raw files already there. It is refused, not recreated."""
    raw = run_dir / RAW
    if (run_dir / QUERIES).exists() or not raw.is_dir() or not any(raw.iterdir()):
        return
    raise UserError(
        f"{run_dir / QUERIES} is missing, but {raw} holds measured queries: resuming would measure every "
        "query again and mix the new records with the old raw files",
        fix=f"restore {QUERIES} from a backup, or start a new run (leave out --resume); to measure everything "
            f"again in this folder anyway, create an empty one: touch {run_dir / QUERIES}",
    )


def _repair_tail(path: Path) -> None:
    """Cut an unterminated last line back to the last newline. Only the last line can be
    torn, as every append is fsynced before the next starts. A tail that parses as a whole
    record (all but its newline reached the disk) is kept and given its newline."""
    if not path.exists():
        return
    with open(path, "r+b") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        # Scan back for the last newline in blocks: the file may be large, the tail is short.
        end, block = size, 1 << 16
        while end > 0:
            start = max(0, end - block)
            fh.seek(start)
            chunk = fh.read(end - start)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                keep = start + cut + 1
                break
            end = start
        else:
            keep = 0
        fh.seek(keep)
        tail = fh.read()
        if _is_record(tail):
            fh.seek(size)
            fh.write(b"\n")
        else:
            fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())


def _is_record(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _read_jsonl(path: Path, kind: str | None = None) -> Iterator[dict]:
    """Every complete line, each checked as a `kind` ("query record", "sample"). An unterminated
    last line is an append in progress (or a tear that open() has not cut yet) and is not part
    of the data; a bad complete line is."""
    if not path.exists():
        return
    with open(path, "rb") as fh:  # binary iteration splits on b"\n" only
        for lineno, raw in enumerate(fh, 1):
            if not raw.endswith(b"\n"):
                return
            try:
                obj = json.loads(raw)
            except ValueError as e:
                raise UserError(
                    f"{path}, line {lineno}, is not valid JSON ({e}); only the last line can be torn by a crash",
                    fix=f"remove or correct line {lineno} by hand, then run the command again",
                ) from None
            what = record_problem(obj, kind) if kind else None
            if what:
                raise UserError(
                    f"{path}, line {lineno}, is not a valid {kind}: {what}; edgebench writes every line as an "
                    f"object with {', '.join(_KINDS[kind][0])} as strings",
                    fix=f"remove or correct line {lineno} by hand (a removed query record is measured again by "
                        "--resume), then run the command again",
                )
            yield obj
