"""Build the study's workload: per category, a deterministic sample (for a seed) of one
dataset's records, counted in tokens, too-long ones dropped and counted (never truncated),
written atomically as byte-stable JSONL."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator import fsutil
from orchestrator.errors import UserError

from . import tokencount
from .datasets import DATASETS, Candidate, Dataset
from .download import ensure_dataset
from .schema import CATEGORIES, OUTPUT_LIMITS, Query, dumps_line
from .templates import apply_template


@dataclass(frozen=True)
class Counter:
    """How prompt tokens are counted; None means not counted (prompt_tokens_est null)."""

    tokenizer: Path
    vocab: Path
    jobs: int | None = None

    def count(self, prompts: list[str]) -> list[int]:
        return tokencount.count_many(prompts, self.tokenizer, self.vocab, self.jobs)


@dataclass
class CategoryReport:
    category: str
    dataset: str
    candidates: int
    built: int = 0
    dropped: int = 0  # prompt_tokens_est + max_tokens > n_ctx
    files: list[str] = field(default_factory=list)


def dataset_folder(ds: Dataset, from_dir: Path | None) -> Path:
    if from_dir is None:
        return ensure_dataset(ds)
    folder = Path(from_dir) / ds.name
    if not folder.is_dir():
        raise UserError(
            f"{folder} does not exist (expected one folder per dataset in {from_dir}: "
            f"{', '.join(d.name for d in DATASETS.values())})",
            fix=f"copy the {ds.name} files into {folder}, or leave out --from to download them",
        )
    return folder


def select(
    cands: list[Candidate],
    n: int,
    seed: int,
    category: str,
    template: str,
    counter: Counter | None,
    n_ctx: int,
    report: CategoryReport,
) -> list[Query]:
    """Walk a seeded shuffle of the candidates, keeping those that fit n_ctx, until n."""
    order = list(cands)
    random.Random(f"edgebench:{seed}:{category}").shuffle(order)
    limit = OUTPUT_LIMITS[category]
    ds = DATASETS[category]
    chosen: list[Query] = []
    pos = 0
    while len(chosen) < n and pos < len(order):
        batch = order[pos : pos + n - len(chosen)]
        pos += len(batch)
        prompts = [apply_template(template, c.prompt) for c in batch]
        counts = counter.count(prompts) if counter else [None] * len(batch)
        for cand, prompt, est in zip(batch, prompts, counts, strict=True):
            if est is not None and est + limit > n_ctx:
                report.dropped += 1
                continue
            source = {
                "dataset": ds.name,
                "split": cand.split,
                "record_id": cand.record_id,
                "licence": ds.licence,
                "file": cand.file,
            }
            meta = {"template": template, **(cand.meta or {})}
            chosen.append(
                Query(
                    f"{ds.name}:{cand.record_id}",
                    category,
                    prompt,
                    limit,
                    source=source,
                    meta=meta,
                    prompt_tokens_est=est,
                )
            )
    report.built = len(chosen)
    report.files = sorted({q.source["file"] for q in chosen})
    return chosen


def build_workload(
    out: Path,
    per_category: int = 100,
    seed: int = 0,
    from_dir: Path | None = None,
    template: str = "raw",
    counter: Counter | None = None,
    n_ctx: int = 2048,
    categories: tuple[str, ...] = CATEGORIES,
) -> list[CategoryReport]:
    """Write the workload to `out`; return one report per category."""
    folders = {
        c: dataset_folder(DATASETS[c], from_dir) for c in categories
    }  # fail fast, before counting
    queries: list[Query] = []
    reports = []
    for category in categories:
        ds = DATASETS[category]
        cands = list(ds.candidates(folders[category]))
        report = CategoryReport(category, ds.name, len(cands))
        queries += select(cands, per_category, seed, category, template, counter, n_ctx, report)
        reports.append(report)
    write_jsonl(out, queries)
    return reports


def write_jsonl(out: Path, queries: list[Query]) -> None:
    """Atomically: a reader never sees half a workload."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fsutil.atomic_write(out, "".join(dumps_line(q) + "\n" for q in queries).encode("utf-8"))


def format_summary(
    reports: list[CategoryReport], per_category: int, n_ctx: int, counted: bool
) -> str:
    rows = [("category", "dataset", "candidates", "built", f"dropped (> n_ctx {n_ctx})", "files")]
    for r in reports:
        rows.append(
            (
                r.category,
                r.dataset,
                str(r.candidates),
                str(r.built),
                str(r.dropped) if counted else "not checked",
                ", ".join(r.files) or "-",
            )
        )
    lines = format_table(rows)
    short = [r for r in reports if r.built < per_category]
    for r in short:
        lines.append(
            f"warning: {r.category}: {r.built} of {per_category} queries "
            f"({r.candidates} candidates, {r.dropped} too long for --n-ctx {n_ctx})"
        )
    if not counted:
        lines.append(
            "note: prompt tokens not counted (--no-count); prompt_tokens_est is null and "
            "no query was checked against --n-ctx"
        )
    return "\n".join(lines)


def format_table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
