"""Run and experiment folders into polars frames, read-only: through the store's RunReader,
which takes no lock and skips a line still being appended, so a run in progress renders too."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from orchestrator.errors import UserError
from orchestrator.store import MANIFEST, RunReader

EXPERIMENT = "experiment.json"

# Record fields that are lists or dicts: kept on the records, flattened or summarised for frames.
_NESTED = {"tbt_s", "t_tok_s", "llama", "validation", "samplers", "variant"}
# Long text is kept off the numeric frame; the per-query table and the export read it from records.
_TEXT = {"output_text", "stderr_tail"}


@dataclass
class Source:
    """One run, or an experiment's runs taken together (each record tagged with its `part`)."""

    dir: Path
    kind: str  # "run" or "experiment"
    manifest: dict
    records: list[dict]
    samples: list[dict]
    experiment: dict | None = None
    parts: list[dict] = field(default_factory=list)
    part_dirs: dict[str, Path] = field(default_factory=dict)

    def run_dir_of(self, record: dict) -> Path:
        return self.part_dirs.get(record.get("part"), self.dir)

    @property
    def name(self) -> str:
        if self.experiment:
            return str(self.experiment.get("name") or self.dir.name)
        return str(self.manifest.get("run_id") or self.dir.name)

    @property
    def plan(self) -> str:
        plan = (self.experiment or {}).get("plan")
        if isinstance(plan, dict):
            plan = plan.get("name")
        return str(plan or "")


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
        return Source(path, "run", reader.manifest, reader.queries(), reader.samples())
    raise UserError(f"{path} is neither a run folder (no {MANIFEST}) nor an experiment folder (no {EXPERIMENT})",
                    fix="pass reports/<run_id>/ or an experiment folder (ls reports/)")


def _load_experiment(path: Path) -> Source:
    try:
        exp = json.loads((path / EXPERIMENT).read_text(encoding="utf-8"))
    except ValueError as e:
        raise UserError(f"{path / EXPERIMENT} is not valid JSON ({e})", fix="restore it from a backup") from None
    records, samples, parts, manifest, dirs = [], [], [], {}, {}
    for part in exp.get("parts") or []:
        run_dir = path / part.get("run_dir", part.get("name", ""))
        if not is_run(run_dir):
            # a part not run yet: the report says so instead of failing
            parts.append({**part, "present": False})
            continue
        reader = RunReader(run_dir)
        manifest = manifest or reader.manifest
        name = part.get("name") or run_dir.name
        dirs[name] = run_dir
        parts.append({**part, "present": True, "run_id": reader.manifest.get("run_id")})
        for r in reader.queries():
            r.setdefault("experiment", exp.get("name"))
            records.append({**r, "part": name})
        samples += [{**s, "part": name} for s in reader.samples()]
    return Source(path, "experiment", manifest, records, samples, exp, parts, dirs)


def _scalar_columns(rows: list[dict], skip: set[str] = frozenset()) -> pl.DataFrame:
    """A frame from flat dicts whose keys differ from row to row: ints and floats of one key
    become Float64 (a reading may be 0 in one row and 0.5 in the next), bools stay bools."""
    keys: dict[str, None] = {}
    for r in rows:
        for k in r:
            if k not in skip:
                keys.setdefault(k)
    cols = {}
    for k in keys:
        values = [r.get(k) for r in rows]
        present = [v for v in values if v is not None]
        if present and all(isinstance(v, bool) for v in present):
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
    llama = r.get("llama") or {}
    for k in ("kv_self_mib", "n_gpu_layers", "offloaded_layers", "t_load_us", "t_p_eval_us", "t_eval_us", "n_eval",
              "n_p_eval"):
        if k in llama and not isinstance(llama[k], list | dict):
            out[f"llama_{k}"] = llama[k]
    val = r.get("validation")
    out["validation_ok"] = val.get("ok") if isinstance(val, dict) else None
    tbt = r.get("tbt_s") or []
    out["tbt_mean_s"] = sum(tbt) / len(tbt) if tbt else None
    return out


def queries_frame(src: Source) -> pl.DataFrame:
    df = _scalar_columns([flat_record(r) for r in src.records])
    for col, dtype in (("category", pl.Utf8), ("status", pl.Utf8), ("phase", pl.Utf8), ("query_id", pl.Utf8),
                       ("attempt", pl.Utf8), ("variant_id", pl.Utf8), ("part", pl.Utf8)):
        if col not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=dtype).alias(col))
    return df


def measured(df: pl.DataFrame) -> pl.DataFrame:
    """The attempts that count: warm-up repetitions are reported apart, never in the statistics."""
    return df.filter(pl.col("phase").fill_null("measure") == "measure")


def samples_frame(src: Source) -> pl.DataFrame:
    """Every kept reading; readings an experiment marked `discard` stay out of figures."""
    rows = [s for s in src.samples if not s.get("discard")]
    df = _scalar_columns(rows, skip={"discard"})
    for col in ("query_id", "attempt", "sampler"):
        if col not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=pl.Utf8).alias(col))
    if "t_s" not in df.columns:
        df = df.with_columns(pl.lit(None, dtype=pl.Float64).alias("t_s"))
    return df


def tbt_frame(src: Source) -> pl.DataFrame:
    """One row per token gap of every measured ok attempt: position 1 is the gap after the first token."""
    cats, pos, vals = [], [], []
    for r in src.records:
        if r.get("status") != "ok" or r.get("phase", "measure") != "measure":
            continue
        for i, v in enumerate(r.get("tbt_s") or [], 1):
            cats.append(r.get("category"))
            pos.append(i)
            vals.append(float(v))
    return pl.DataFrame({"category": pl.Series(cats, dtype=pl.Utf8), "position": pl.Series(pos, dtype=pl.Int64),
                         "tbt_s": pl.Series(vals, dtype=pl.Float64)})
