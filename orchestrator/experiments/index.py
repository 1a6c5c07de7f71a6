"""The experiment index: `experiment.json` of an `experiment all` folder, and the `experiment`
entry of a single plan's run manifest. This module owns their names; the experiment runner
writes them and the report reads them through it.

    reports/<id>/experiment.json   {"schema_version": 1, "name": "all", "created_at", "status",
                                    "config", "repeat", "gating",
                                    "parts": [{"name", "run_dir", "status", "plan", "n_failed"?}, ...]}
    reports/<id>/<part>/manifest.json["experiment"] = {"name", "part", "plan", "repeat", "selection", "gating"}

A part's *role* (which of the study's figures it feeds) is read from its recorded plan, its
selection rule and settings, never from its name: a user's copy of a plan under another name
still draws its figure, and a plan named "pair-xyz" that sweeps nothing draws none.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

from orchestrator.errors import UserError

EXPERIMENT = "experiment.json"
SCHEMA = 1
PART_STATES = ("pending", "running", "finished", "interrupted")

# Roles, and the figures each feeds (report/figures.py).
CATEGORIES = "categories"  # every query of every category: the per-category statistics and figures
GRANULAR = "granular"  # one query per category sampled finely: the series over a query
OUTPUT_SWEEP = "output-sweep"  # one query at several output limits
PROMPT_SWEEP = "prompt-sweep"  # queries spread over the prompt-length range
MATCHED_PAIR = "matched-pair"  # two categories' queries of matched prompt length
NGL_SWEEP = "ngl-sweep"  # GPU-offloaded layers stepped
OTHER = "other"
# The categories plan again under another engine (`experiment engines`): compared with the
# categories part on the page, never pooled with it.
OTHER_ENGINE = "other-engine"
# At or below this interval a plan's readings draw a series over one query (figures.GRANULAR_MAX_DT_S).
GRANULAR_INTERVAL_S = 0.05


def role(plan: dict | None) -> str:
    """What a recorded plan (Plan.to_json()) measures, from its rule and settings."""
    if not isinstance(plan, dict):
        return OTHER
    rule = plan.get("rule")
    if plan.get("n_gpu_layers"):
        return NGL_SWEEP
    if rule == "matched-pair":
        return MATCHED_PAIR
    if rule == "spread":
        return PROMPT_SWEEP
    if len(plan.get("max_tokens") or ()) >= 2:
        return OUTPUT_SWEEP
    if rule == "all":
        return CATEGORIES
    if rule == "median" and float(plan.get("interval_s") or 1.0) <= GRANULAR_INTERVAL_S:
        return GRANULAR
    return OTHER


def part_roles(parts: list[dict]) -> list[str]:
    """The role of each part of an experiment, in order: the first categories part is the one the
    per-category statistics describe; a later one under another engine is OTHER_ENGINE."""
    roles, first_engine = [], None
    for part in parts:
        r = role(part.get("plan"))
        if r == CATEGORIES:
            engine = (part.get("plan") or {}).get("engine") or "main"
            if first_engine is None:
                first_engine = engine
            elif engine != first_engine:
                r = OTHER_ENGINE
        roles.append(r)
    return roles


def run_experiment(manifest: dict) -> dict | None:
    """The `experiment` entry of a run manifest (a single plan's run, or one part), else None."""
    exp = manifest.get("experiment") if isinstance(manifest, dict) else None
    return exp if isinstance(exp, dict) else None


def run_role(manifest: dict) -> str | None:
    """The role of a single plan's run folder; None for a plain `edgebench run`."""
    exp = run_experiment(manifest)
    return role(exp.get("plan")) if exp else None


def is_experiment(path: Path) -> bool:
    return (Path(path) / EXPERIMENT).is_file()


def write(exp_dir: Path, data: dict) -> None:
    from orchestrator.fsutil import atomic_write

    validate(data, Path(exp_dir) / EXPERIMENT)
    atomic_write(Path(exp_dir) / EXPERIMENT, (json.dumps(data, indent=2) + "\n").encode())


def new(name: str, created_at: str, config: dict, repeat: int | None, gating: dict | None,
        parts: list[tuple[str, dict]]) -> dict:
    """A fresh index: every part pending, each with its plan as recorded."""
    return {"schema_version": SCHEMA, "name": name, "created_at": created_at, "status": "running",
            "config": config, "repeat": repeat, "gating": gating,
            "parts": [{"name": n, "run_dir": n, "status": "pending", "plan": plan} for n, plan in parts]}


def read(exp_dir: Path) -> dict:
    """experiment.json, validated; every problem is one UserError naming the file and the fix."""
    path = Path(exp_dir) / EXPERIMENT
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{exp_dir} is not an experiment folder (it has no {EXPERIMENT})",
                        fix="pass the folder `edgebench experiment all` printed, reports/<id>/") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {path}: {exc}", fix="check the folder's permissions") from None
    except ValueError as exc:
        raise UserError(f"{path} is not valid JSON ({exc})", fix="restore it, or start a new experiment") from None
    validate(data, path)
    return data


def validate(data, path: Path) -> None:
    def bad(what: str):
        return UserError(f"{path}: {what}", fix="restore it from a backup, or start a new experiment")

    if not isinstance(data, dict):
        raise bad(f"an experiment index is a JSON object, found {type(data).__name__}")
    if data.get("schema_version") != SCHEMA:
        raise UserError(f"{path} has experiment schema {data.get('schema_version')!r}; this edgebench reads {SCHEMA}",
                        fix="render it with the edgebench that wrote it, or start a new experiment")
    if not isinstance(data.get("name"), str) or not data["name"]:
        raise bad("'name' must be a non-empty string")
    parts = data.get("parts")
    if not isinstance(parts, list):
        raise bad("'parts' must be a list")
    seen = set()
    for i, part in enumerate(parts):
        if not isinstance(part, dict):
            raise bad(f"parts[{i}] must be an object")
        name, run_dir = part.get("name"), part.get("run_dir")
        if not isinstance(name, str) or not name or name in seen:
            raise bad(f"parts[{i}].name must be a unique non-empty string")
        seen.add(name)
        rel = PurePosixPath(run_dir) if isinstance(run_dir, str) else None
        if rel is None or rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise bad(f"parts[{i}].run_dir must be a folder inside the experiment, found {run_dir!r}")
        if part.get("status") not in PART_STATES:
            raise bad(f"parts[{i}].status must be one of {', '.join(PART_STATES)}, found {part.get('status')!r}")
        if not isinstance(part.get("plan"), dict):
            raise bad(f"parts[{i}].plan must be the plan as recorded (an object)")


def part_dir(exp_dir: Path, part: dict) -> Path:
    return Path(exp_dir) / part["run_dir"]


def find_unfinished(out_dir: Path, name: str = "all") -> Path | None:
    """The newest experiment folder under `out_dir` named `name` that did not finish."""
    if not out_dir.is_dir():
        return None
    for path in sorted(out_dir.glob(f"*/{EXPERIMENT}"), reverse=True):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("name") == name and data.get("status") != "finished":
            return path.parent
    return None
