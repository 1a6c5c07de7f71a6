"""Run and experiment folders into polars frames, read-only: through the store's RunReader,
which takes no lock and skips a line still being appended, so a run in progress renders too."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from orchestrator import fields as F
from orchestrator.errors import UserError
from orchestrator.experiments import index
from orchestrator.store import MANIFEST, MANIFEST_ENGINE, SAMPLES, RunReader

EXPERIMENT = index.EXPERIMENT
# The column every record and reading gets: the role of the part it came from (experiments/index.py).
ROLE = "role"

# Record fields that are lists or dicts: kept on the records, flattened or summarised for frames.
_NESTED = {f.name for f in F.RECORD.values() if f.type.startswith(("list", "dict"))}
# Long text is kept off the numeric frame; the per-query table and the export read it from records.
_TEXT = {F.OUTPUT_TEXT, F.STDERR_TAIL}
# samples.jsonl is parsed this many bytes at a time: a 10 000-query run's readings never sit in
# memory as text or as Python dicts, only as the columns of one frame.
CHUNK_BYTES = 16 << 20


@dataclass
class Source:
    """One run, or an experiment's runs taken together (each record tagged with its `part`)."""

    dir: Path
    kind: str  # "run" or "experiment"
    manifest: dict
    records: list[dict]
    samples: pl.DataFrame  # the kept readings (read_samples): never one dict per reading
    experiment: dict | None = None
    parts: list[dict] = field(default_factory=list)
    part_dirs: dict[str, Path] = field(default_factory=dict)

    def run_dir_of(self, record: dict) -> Path:
        return self.part_dirs.get(record.get(F.PART), self.dir)

    @property
    def name(self) -> str:
        if self.experiment:
            return str(self.experiment.get("name") or self.dir.name)
        return str(self.manifest.get("run_id") or self.dir.name)

    @property
    def roles(self) -> set[str]:
        """The roles of the parts (or of this single plan's run) that have records."""
        return {r.get(ROLE) for r in self.records if r.get(ROLE)}


def board_setting(manifest: dict, key: str):
    """What the board said at the run's start: the power mode's name (`nvpmodel`) or whether
    jetson_clocks pinned the clocks; None where it was not recorded or not readable."""
    state = ((manifest.get("board") or {}).get("start") or {})
    value = state.get(key)
    if key == "nvpmodel" and isinstance(value, dict):
        value = value.get("mode")
    return None if value in (None, "unavailable") else value


def is_run(path: Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def is_experiment(path: Path) -> bool:
    return (Path(path) / EXPERIMENT).is_file()


def load(path: Path) -> Source:
    path = Path(path)
    if is_experiment(path):
        return _load_experiment(path)
    if is_run(path):
        reader = RunReader(path)
        role = index.run_role(reader.manifest)
        records = reader.queries()
        samples = read_samples(path, {r.get(F.ATTEMPT) for r in records})
        if role:
            records = [{**r, ROLE: role} for r in records]
            samples = samples.with_columns(pl.lit(role, dtype=pl.Utf8).alias(ROLE))
        return Source(path, "run", reader.manifest, records, samples)
    raise UserError(f"{path} is neither a run folder (no {MANIFEST}) nor an experiment folder (no {EXPERIMENT})",
                    fix="pass reports/<run_id>/ or an experiment folder (ls reports/)")


def _load_experiment(path: Path) -> Source:
    exp = index.read(path)
    records, frames, parts, manifest, dirs = [], [], [], {}, {}
    for part, role in zip(exp["parts"], index.part_roles(exp["parts"]), strict=True):
        run_dir = index.part_dir(path, part)
        if not is_run(run_dir):
            # a part not run yet: the report says so instead of failing
            parts.append({**part, "present": False, ROLE: role})
            continue
        reader = RunReader(run_dir)
        manifest = manifest or reader.manifest
        name = part["name"]
        dirs[name] = run_dir
        parts.append({**part, "present": True, "run_id": reader.manifest.get("run_id"), ROLE: role,
                      MANIFEST_ENGINE: reader.manifest.get(MANIFEST_ENGINE) or {}})
        part_records = reader.queries()
        records += [{**r, F.PART: name, ROLE: role} for r in part_records]
        frames.append(read_samples(run_dir, {r.get(F.ATTEMPT) for r in part_records}).with_columns(
            pl.lit(name, dtype=pl.Utf8).alias(F.PART), pl.lit(role, dtype=pl.Utf8).alias(ROLE)))
    samples = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
    return Source(path, "experiment", manifest, records, samples, exp, parts, dirs)


_DTYPES = {"int": pl.Float64, "float": pl.Float64, "bool": pl.Boolean, "str": pl.Utf8}


def _declared_type(table: dict, name: str):
    f = F.lookup(table, name)
    return _DTYPES.get(f.type) if f else None


def _chunks(path: Path):
    """samples.jsonl in pieces of whole lines. An unterminated last line is an append in progress
    and is left out, as the store's RunReader leaves it out."""
    with open(path, "rb") as fh:
        rest = b""
        while block := fh.read(CHUNK_BYTES):
            block = rest + block
            cut = block.rfind(b"\n") + 1
            rest = block[cut:]
            if cut:
                yield block[:cut]


def _typed(df: pl.DataFrame) -> pl.DataFrame:
    """The types _scalar_columns gives readings: a declared field its declared type (a value that
    does not fit it left empty); others every number Float64, no value or a nested one text."""
    casts = []
    for name, dtype in df.schema.items():
        want = _declared_type(F.READING, name)
        if want is None:
            want = pl.Float64 if dtype.is_numeric() else pl.Utf8 if dtype == pl.Null or dtype.is_nested() else dtype
        if dtype == want:
            continue
        if dtype.is_nested():
            casts.append(pl.col(name).map_elements(lambda v: json.dumps(v.to_list() if isinstance(v, pl.Series)
                                                                         else v), return_dtype=pl.Utf8)
                         if want == pl.Utf8 else pl.lit(None, dtype=want).alias(name))
        elif want == pl.Boolean or (want == pl.Float64 and dtype == pl.Boolean):
            casts.append(pl.lit(None, dtype=want).alias(name))
        else:
            casts.append(pl.col(name).cast(want, strict=False))
    return df.with_columns(casts) if casts else df


def read_samples(run_dir: Path, attempts: set[str]) -> pl.DataFrame:
    """The readings of `attempts` (a killed attempt has readings but no record) that an experiment
    did not mark `discard`, parsed by polars a chunk at a time."""
    path = Path(run_dir) / SAMPLES
    frames = []
    if path.exists():
        keep = sorted(a for a in attempts if a is not None)
        for chunk in _chunks(path):
            try:
                df = pl.read_ndjson(io.BytesIO(chunk), infer_schema_length=None)
            except pl.exceptions.PolarsError:
                RunReader(run_dir).samples(attempts)  # names the bad line in a UserError
                raise
            if F.R_ATTEMPT not in df.columns:
                continue
            df = df.filter(pl.col(F.R_ATTEMPT).is_in(keep))
            if F.DISCARD in df.columns:
                df = df.filter(pl.col(F.DISCARD).fill_null(False).not_()).drop(F.DISCARD)
            frames.append(_typed(df))
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


def _scalar_columns(rows: list[dict], table: dict | None = None) -> pl.DataFrame:
    """A frame from flat dicts whose keys differ from row to row. A declared field gets its declared
    type whatever its values (a column where every query failed is all empty, not text); others:
    ints and floats of one key become Float64 (a reading may be 0 in one row and 0.5 in the next),
    bools stay bools. A value that does not fit its declared type is left empty, not a crash."""
    keys: dict[str, None] = {}
    for r in rows:
        for k in r:
            keys.setdefault(k)
    cols = {}
    for k in keys:
        values = [r.get(k) for r in rows]
        present = [v for v in values if v is not None]
        declared = _declared_type(table, k) if table is not None else None
        if declared is pl.Float64:
            cols[k] = pl.Series(k, [float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None
                                    for v in values], dtype=pl.Float64)
        elif declared is pl.Boolean:
            cols[k] = pl.Series(k, [v if isinstance(v, bool) else None for v in values], dtype=pl.Boolean)
        elif declared is pl.Utf8:
            cols[k] = pl.Series(k, [None if v is None else str(v) for v in values], dtype=pl.Utf8)
        elif present and all(isinstance(v, bool) for v in present):
            cols[k] = pl.Series(k, values, dtype=pl.Boolean)
        elif present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
            cols[k] = pl.Series(k, [None if v is None else float(v) for v in values], dtype=pl.Float64)
        elif all(v is None or isinstance(v, str) for v in values):
            cols[k] = pl.Series(k, values, dtype=pl.Utf8)
        else:
            cols[k] = pl.Series(k, [None if v is None else json.dumps(v) for v in values], dtype=pl.Utf8)
    return pl.DataFrame(cols, height=len(rows)) if cols else pl.DataFrame(height=len(rows))


def flat_record(r: dict) -> dict:
    """The scalar view of one record: nested llama.cpp timings and validation as columns."""
    out = {k: v for k, v in r.items() if k not in _NESTED and k not in _TEXT}
    llama = r.get(F.LLAMA) or {}
    for col, key, _type, _meaning in F.LLAMA_COLUMNS:
        if key in llama and not isinstance(llama[key], list | dict):
            out[col] = llama[key]
    val = r.get(F.VALIDATION)
    out[F.VALIDATION_OK] = val.get("ok") if isinstance(val, dict) else None
    tbt = r.get(F.TBT_S) or []
    out[F.TBT_MEAN_S] = sum(tbt) / len(tbt) if tbt else None
    exp = r.get(F.EXPERIMENT_TAG)
    out[F.EXPERIMENT_NAME] = exp.get("name") if isinstance(exp, dict) else None
    return out


def queries_frame(src: Source) -> pl.DataFrame:
    df = _scalar_columns([flat_record(r) for r in src.records], table={**F.RECORD, **F.DERIVED})
    for col, dtype in ((F.CATEGORY, pl.Utf8), (F.STATUS, pl.Utf8), (F.PHASE, pl.Utf8), (F.QUERY_ID, pl.Utf8),
                       (F.ATTEMPT, pl.Utf8), (F.VARIANT_ID, pl.Utf8), (F.PART, pl.Utf8), (ROLE, pl.Utf8)):
        if col not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=dtype).alias(col))
    return df


def measured(df: pl.DataFrame) -> pl.DataFrame:
    """The attempts that count: warm-up repetitions are reported apart, never in the statistics."""
    return df.filter(pl.col(F.PHASE).fill_null("measure") == "measure")


def samples_frame(src: Source) -> pl.DataFrame:
    """Every kept reading; readings an experiment marked `discard` stay out of figures."""
    df = src.samples
    for col in (F.R_QUERY_ID, F.R_ATTEMPT, F.R_SAMPLER, ROLE):
        if col not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=pl.Utf8).alias(col))
    if F.T_S not in df.columns:
        df = df.with_columns(pl.lit(None, dtype=pl.Float64).alias(F.T_S))
    return df


def tbt_frame(src: Source) -> pl.DataFrame:
    """One row per token gap of every measured ok attempt: position 1 is the gap after the first token."""
    cats, pos, vals, roles = [], [], [], []
    for r in src.records:
        if r.get(F.STATUS) != "ok" or r.get(F.PHASE, "measure") != "measure":
            continue
        for i, v in enumerate(r.get(F.TBT_S) or [], 1):
            cats.append(r.get(F.CATEGORY))
            pos.append(i)
            vals.append(float(v))
            roles.append(r.get(ROLE))
    return pl.DataFrame({F.CATEGORY: pl.Series(cats, dtype=pl.Utf8), "position": pl.Series(pos, dtype=pl.Int64),
                         F.TBT_S: pl.Series(vals, dtype=pl.Float64), ROLE: pl.Series(roles, dtype=pl.Utf8)})
