"""A benchmark run: check everything before the first query, then one `main` per query,
each record written whole before the next query starts; resumable after any interruption."""

from __future__ import annotations

import datetime as dt
import os
import resource
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from orchestrator.config import RunConfig
from orchestrator.errors import UserError


@dataclass
class Prepared:
    queries: list
    pieces: list[bytes]
    model_info: dict
    n_ctx_train: int | None
    ignore_eos: bool
    tokenizer: Path


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def select_queries(queries: list, categories: tuple[str, ...], limit: int | None) -> list:
    picked, seen = [], {}
    for q in queries:
        if categories and q.category not in categories:
            continue
        seen[q.category] = seen.get(q.category, 0) + 1
        if limit is None or seen[q.category] <= limit:
            picked.append(q)
    return picked


def prepare(cfg: RunConfig) -> Prepared:
    """Every check that can fail before a query runs: binary, model, workload."""
    from orchestrator.engine.tokens import token_pieces
    from orchestrator.ggufile import read_header, read_info
    from orchestrator.workloads.schema import CATEGORIES, load_workload

    if not cfg.binary.is_file():
        raise UserError(f"llama.cpp binary {cfg.binary} does not exist", fix="make bootstrap, or --binary PATH")
    if not os.access(cfg.binary, os.X_OK):
        raise UserError(f"llama.cpp binary {cfg.binary} is not executable", fix=f"chmod +x {cfg.binary}")
    info = read_info(cfg.model)
    if cfg.memory_check:
        check_fits(info)
    meta, _ = read_header(cfg.model, tensors=False)
    try:
        pieces = token_pieces(meta)
    except ValueError as exc:
        raise UserError(f"{cfg.model}: {exc}", fix="--model PATH to a llama-architecture GGUF") from exc
    for c in cfg.categories:
        if c not in CATEGORIES:
            raise UserError(f"unknown category {c!r}", fix=f"--category one of: {', '.join(CATEGORIES)}")
    queries = select_queries(load_workload(cfg.workload), cfg.categories, cfg.limit)
    if not queries:
        raise UserError(f"no query of {cfg.workload} matches the selection", fix="drop --category or --limit")
    ignore_eos = info["synthetic"] if cfg.ignore_eos is None else cfg.ignore_eos
    tokenizer = cfg.binary.parent / "tokenize"
    if any(not q.prompt_tokens_est for q in queries) and not tokenizer.is_file():
        raise UserError(
            f"{cfg.workload} has queries without prompt_tokens_est, and there is no {tokenizer} to count them",
            fix="make bootstrap (builds tokenize beside main), or edgebench workloads build (stores the counts)",
        )
    return Prepared(queries, pieces, info, info.get("context_length"), ignore_eos, tokenizer)


def check_fits(info: dict) -> None:
    """A model larger than the memory available pages from disk at every token: its timings
    would measure the SD card, not the model. Refuse before the first query."""
    from orchestrator.sysinfo import meminfo, sysroot

    avail = meminfo(sysroot()).get("MemAvailable")
    if avail and info["size_bytes"] > avail:
        raise UserError(
            f"the model {Path(info['path']).name} ({info['size_bytes'] / 1e6:.0f} MB) does not fit in the "
            f"{avail / 1e6:.0f} MB of memory available here",
            fix="--model a smaller quantisation (e.g. Q4_K_M), free memory, or --no-memory-check to run it anyway",
        )


def manifest_for(cfg: RunConfig, prep: Prepared, run_id: str) -> dict:
    from orchestrator import __version__
    from orchestrator import sysinfo as plat
    from orchestrator.net import sha256_file

    tree = cfg.binary.parent
    binary = {"path": str(cfg.binary), "sha256": sha256_file(cfg.binary), "commit": None, "patch_state": None,
              "build_flags": None}
    if (tree / "Makefile").is_file():
        from orchestrator.bootstrap.llama_source import COMMIT, fingerprint_mismatches
        from orchestrator.bootstrap.patch import patch_state

        binary["commit"] = COMMIT if not fingerprint_mismatches(tree) else "unknown (sources differ from a33e6a0)"
        binary["patch_state"] = patch_state(tree)
    ledger = tree.parent / "ledger.json"
    if ledger.is_file():
        from orchestrator.bootstrap.ledger import Ledger

        build = Ledger(ledger).get("build") or {}
        if build.get("binaries", {}).get("main", {}).get("sha256") == binary["sha256"]:
            binary["build_flags"] = {k: build.get(k) for k in ("make_vars", "backend", "compiler", "jobs")}
    return {
        "run_id": run_id,
        "created_at": _now(),
        "edgebench_version": __version__,
        "config": cfg.to_json(),
        "platform": plat.detect(cfg.out_dir if cfg.out_dir.exists() else Path.cwd()),
        "binary": binary,
        "model": {**prep.model_info, "sha256": sha256_file(cfg.model)},
        "workload": {"path": str(cfg.workload), "sha256": sha256_file(cfg.workload),
                     "queries": [q.id for q in prep.queries]},
        "ignore_eos": prep.ignore_eos,
        "samplers": [{"name": "process", "interval_s": cfg.interval_s}],
        "harness": {"pid": os.getpid(), "python": sys.version.split()[0]},
        "status": "running",
    }


def config_from_manifest(manifest: dict, out_dir: Path) -> RunConfig:
    c = dict(manifest["config"])
    for k in ("binary", "model", "workload", "out_dir"):
        c[k] = Path(c[k])
    c["out_dir"] = out_dir
    c["categories"] = tuple(c.get("categories") or ())
    return RunConfig(**c)


def prompt_tokens_for(query, prep: Prepared, model: Path) -> int:
    if query.prompt_tokens_est:
        return query.prompt_tokens_est
    from orchestrator.workloads.tokens import count_tokens

    return count_tokens(query.prompt, prep.tokenizer, model)


def pending(prep: Prepared, store) -> list:
    """The selected queries that have no record yet, in workload order."""
    done = store.done_ids()
    return [q for q in prep.queries if q.id not in done]


def execute(cfg: RunConfig, prep: Prepared, store, make_samplers, report=None) -> list[dict]:
    """Run the queries that have no record yet. `make_samplers()` gives fresh samplers per
    query (tests hand in fakes); `report(record, index, total)` is told about each one."""
    from orchestrator.engine.query import failed, run_query

    todo = pending(prep, store)
    records = []
    for i, q in enumerate(todo, 1):
        attempt = uuid.uuid4().hex[:12]
        raw = store.raw_dir(q.id)
        try:
            n_prompt = prompt_tokens_for(q, prep, cfg.model)
        except (UserError, ValueError) as exc:
            record, samples = failed(q, attempt, "error", f"cannot count prompt tokens: {exc}"), {}
        else:
            record, samples = run_query(cfg, q, attempt, raw, prep.pieces, prep.n_ctx_train, n_prompt,
                                        prep.ignore_eos, make_samplers())
        flat = [dict(s, sampler=name) for name, series in samples.items() for s in series]
        record["n_samples"] = len(flat)
        store.append_samples(q.id, attempt, flat)
        store.append_query(record)
        records.append(record)
        if report:
            report(record, i, len(todo))
    return records


def harness_usage() -> dict:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"peak_rss_bytes": ru.ru_maxrss * 1024, "cpu_s": ru.ru_utime + ru.ru_stime}
