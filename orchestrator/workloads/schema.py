"""The workload file: JSONL, one query a line. `load_workload` checks every line and reports
every bad one at once, as `FILE:LINE: reason`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import UserError

CATEGORIES = ("simple", "complex", "conversational", "task-oriented", "contextual")

# Output-token limits per category, as in the study.
OUTPUT_LIMITS = {
    "simple": 30,
    "complex": 70,
    "conversational": 40,
    "task-oriented": 100,
    "contextual": 50,
}

REQUIRED = {"id": str, "category": str, "prompt": str, "max_tokens": int}
OPTIONAL = {"source": dict, "meta": dict, "prompt_tokens_est": int}


@dataclass(frozen=True)
class Query:
    id: str
    category: str
    prompt: str
    max_tokens: int
    source: dict | None = None
    meta: dict | None = None
    prompt_tokens_est: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The line's object; `source` and `meta` only when set, `prompt_tokens_est` always
        (null means "not counted")."""
        out: dict[str, Any] = {
            "id": self.id,
            "category": self.category,
            "prompt": self.prompt,
            "max_tokens": self.max_tokens,
            "prompt_tokens_est": self.prompt_tokens_est,
        }
        if self.source is not None:
            out["source"] = self.source
        if self.meta is not None:
            out["meta"] = self.meta
        return out


def dumps_line(query: Query) -> str:
    """One JSONL line, byte-stable: sorted keys, fixed separators, UTF-8 text kept as is."""
    return json.dumps(query.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _type_name(value: Any) -> str:
    return {
        dict: "object",
        list: "array",
        str: "string",
        bool: "boolean",
        int: "integer",
        float: "number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _is(value: Any, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def check_record(obj: Any) -> list[str]:
    """Reasons why one decoded line is not a valid query (empty list: it is valid)."""
    if not isinstance(obj, dict):
        return [f"expected a JSON object, got {_type_name(obj)}"]
    reasons = []
    for key, kind in REQUIRED.items():
        if key not in obj:
            reasons.append(f"missing field '{key}'")
        elif not _is(obj[key], kind):
            reasons.append(
                f"field '{key}' must be {_type_name(kind())}, got {_type_name(obj[key])}"
            )
    for key, kind in OPTIONAL.items():
        value = obj.get(key)
        if value is not None and not _is(value, kind):
            reasons.append(f"field '{key}' must be {_type_name(kind())}, got {_type_name(value)}")
    unknown = sorted(set(obj) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        reasons.append(
            "unknown field"
            + ("s " if len(unknown) > 1 else " ")
            + ", ".join(f"'{k}'" for k in unknown)
        )
    if reasons:
        return reasons
    if not obj["id"]:
        reasons.append("empty id")
    if obj["category"] not in CATEGORIES:
        reasons.append(f"unknown category '{obj['category']}' (one of: {', '.join(CATEGORIES)})")
    if not obj["prompt"].strip():
        reasons.append("empty prompt")
    if "\x00" in obj["prompt"]:
        reasons.append("prompt contains a NUL character, which cannot be passed to llama.cpp")
    if obj["max_tokens"] <= 0:
        reasons.append(f"max_tokens must be positive, got {obj['max_tokens']}")
    est = obj.get("prompt_tokens_est")
    if est is not None and est <= 0:
        reasons.append(f"prompt_tokens_est must be positive, got {est}")
    return reasons


def load_workload(path: str | Path) -> list[Query]:
    """Every query of a workload file, in file order. Raises one UserError listing every bad
    line (`FILE:LINE: reason`) with the fix."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(
            f"workload file {path} does not exist",
            fix="edgebench workloads build --out PATH, or leave out --workload (the 50 shipped queries)",
        ) from None
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})",
            fix="save the file as UTF-8",
        ) from None
    queries: list[Query] = []
    errors: list[str] = []
    first_line: dict[str, int] = {}
    # JSONL lines end at \n only: str.splitlines() would also break at U+2028, U+0085 or \x1c,
    # which a JSON string may hold raw, refusing a valid line and shifting every later line number.
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"{path}:{lineno}: bad JSON ({exc.msg} at column {exc.colno})")
            continue
        reasons = check_record(obj)
        if not reasons and obj["id"] in first_line:
            reasons = [f"duplicate id '{obj['id']}' (first on line {first_line[obj['id']]})"]
        if reasons:
            errors.extend(f"{path}:{lineno}: {reason}" for reason in reasons)
            continue
        first_line[obj["id"]] = lineno
        queries.append(Query(**obj))
    if errors:
        raise UserError(
            f"{path}: {len(errors)} problem(s) in the workload file\n" + "\n".join(errors),
            fix=f"correct those lines (format: workloads/README.md), then run "
            f"`edgebench workloads check {path}`",
        )
    if not queries:
        raise UserError(
            f"{path}: no queries in the workload file",
            fix="add one JSON object a line (format: workloads/README.md)",
        )
    return queries


def category_counts(queries: list[Query]) -> dict[str, int]:
    """Queries per category, in CATEGORIES order, categories with none left out."""
    return {c: n for c in CATEGORIES if (n := sum(q.category == c for q in queries))}
