"""What every dataset reader shares: the candidate record, file errors that name the file and
the record, JSON and parquet loading."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import UserError

FIX_DATASET = (
    "replace the file with an unmodified copy from the official source "
    "(see workloads/README.md), or delete it from the folder so it is downloaded again"
)


@dataclass(frozen=True)
class Candidate:
    """One record a query can be built from."""

    prompt: str
    record_id: str
    split: str
    file: str  # path relative to the dataset's folder
    meta: dict | None = None


def bad(path: Path, where: str, reason: str) -> UserError:
    """A malformed dataset file: names the file and the record."""
    return UserError(f"{path}: {where}: {reason}", fix=FIX_DATASET)


def load_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise bad(
            path, f"line {exc.lineno} column {exc.colno}", f"not valid JSON ({exc.msg})"
        ) from None
    except UnicodeDecodeError as exc:
        raise bad(path, f"byte {exc.start}", "not UTF-8 text") from None


def field(obj: Any, key: str, kind: type | tuple[type, ...], path: Path, where: str) -> Any:
    """obj[key], which must be of `kind`; else an error naming the file and the record."""
    if not isinstance(obj, dict):
        raise bad(path, where, f"expected an object, got {type(obj).__name__}")
    if key not in obj:
        raise bad(path, where, f"missing '{key}'")
    value = obj[key]
    if not isinstance(value, kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise bad(path, where, f"'{key}' should be {names}, got {type(value).__name__}")
    return value


def read_rows(path: Path) -> Iterator[dict]:
    """Rows of a Hugging Face export: parquet (needs pyarrow or polars), JSON lines, or a JSON list."""
    if path.suffix == ".parquet":
        yield from _parquet_rows(path)
        return
    if path.suffix == ".jsonl":
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise bad(path, f"line {lineno}", f"not valid JSON ({exc.msg})") from None
        return
    data = load_json(path)
    if not isinstance(data, list):
        raise bad(path, "top level", f"expected a list of rows, got {type(data).__name__}")
    yield from data


def _parquet_rows(path: Path) -> Iterator[dict]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        pq = None
    if pq is not None:
        yield from pq.read_table(path).to_pylist()
        return
    try:
        import polars as pl
    except ImportError:
        from orchestrator import extras

        raise UserError(
            f"{path} is parquet, and reading parquet needs pyarrow or polars",
            fix=f"{extras.install_command('report')} (brings polars), or pip install pyarrow, "
            "or use the dataset's original layout",
        ) from None
    yield from pl.read_parquet(path).iter_rows(named=True)


def split_from_name(rel: str) -> str:
    """`validation-00000-of-00001.parquet` -> validation; `dev/dialogues_001.json` -> dev."""
    parts = Path(rel).parts
    for part in reversed(parts[:-1]):
        if part in ("train", "dev", "test", "validation", "val"):
            return part
    stem = Path(rel).name.split(".")[0].split("-0")[0]
    for word in ("train", "validation", "dev", "test", "eval", "val"):
        if word in stem.lower().replace("-", "_").split("_"):
            return word
    return stem
