"""A run's plan: which queries of the workload, and the items measured for each.

An item is (query, variant, phase, repetition). A variant is a dict of per-query overrides
(`max_tokens`, `n_gpu_layers`, `interval_s`, ...) so one run folder can hold the same query at
five output limits; `phase` is `warmup` (recorded, marked, left out of statistics) or `measure`.
The manifest stores the plan's items (`Item.to_json`), and a resume rebuilds them from there
(`items_from_manifest`), so each item runs exactly once whatever made the plan. An item's `key`
is what its record is matched on (store.record_key reads the same four values back).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator import diskspace
from orchestrator.errors import UserError

# What a variant may change per query: RunConfig fields, plus the query's own output limit.
VARIANT_KEYS = ("max_tokens", "n_gpu_layers", "interval_s", "threads", "batch_size", "ctx_min", "seed")


def variant_id(variant: dict) -> str:
    return ",".join(f"{k}={variant[k]}" for k in sorted(variant))


@dataclass(frozen=True)
class Item:
    query: object  # workloads.schema.Query
    variant: dict = field(default_factory=dict)
    phase: str = "measure"
    repetition: int = 0

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.query.id, variant_id(self.variant), self.phase, self.repetition)

    @property
    def leaf(self) -> str:
        """The name that tells this item's raw folder from the query's other items'."""
        leaf = f"{self.phase}-{self.repetition}"
        vid = variant_id(self.variant)
        return f"{leaf}-{vid}" if vid else leaf

    def to_json(self) -> dict:
        return {"query_id": self.query.id, "variant": self.variant, "phase": self.phase,
                "repetition": self.repetition}

    def applied(self, cfg):
        """(config, query) this item runs with: the run's, with its variant applied."""
        over = {k: v for k, v in self.variant.items() if k != "max_tokens"}
        cfg = dataclasses.replace(cfg, **over) if over else cfg
        q = self.query
        if "max_tokens" in self.variant:
            q = dataclasses.replace(q, max_tokens=int(self.variant["max_tokens"]))
        return cfg, q

    def disk_bytes(self) -> int:
        """What the item's raw files will take (diskspace.query_bytes), from its own token counts."""
        q = self.query
        max_tokens = int(self.variant.get("max_tokens", q.max_tokens))
        prompt = q.prompt_tokens_est or len(q.prompt.encode("utf-8")) // 2  # a generous guess without a tokenizer
        return diskspace.query_bytes(max_tokens, prompt)


def plan_items(queries: list, warmup: int = 0, repeat: int = 1, variants: list[dict] | None = None) -> list[Item]:
    """Per query and variant: `warmup` marked warm-ups, then `repeat` measured repetitions
    (hyperfine's and llama-bench's order)."""
    out = []
    for q in queries:
        for v in variants or [{}]:
            bad = set(v) - set(VARIANT_KEYS)
            if bad:
                raise UserError(f"a variant cannot set {', '.join(sorted(bad))}",
                                fix=f"variants may set: {', '.join(VARIANT_KEYS)}")
            out += [Item(q, dict(v), "warmup", r) for r in range(warmup)]
            out += [Item(q, dict(v), "measure", r) for r in range(repeat)]
    return out


def items_from_manifest(planned: list[dict], queries: list, run_dir: Path, workload: Path) -> list[Item]:
    """The items a manifest's plan stored, over the queries the workload selects today."""
    by_id = {q.id: q for q in queries}
    items = []
    for it in planned:
        q = by_id.get(it["query_id"])
        if q is None:
            raise UserError(f"{run_dir} plans query {it['query_id']!r}, which {workload} no longer selects",
                            fix="start a new run")
        items.append(Item(q, it["variant"], it["phase"], it["repetition"]))
    return items


def largest_disk_bytes(items: list[Item]) -> int:
    """The token-based budget of the plan's largest item: what the first one may take."""
    return max((i.disk_bytes() for i in items), default=diskspace.RAW_BASE_BYTES)


def select_queries(queries: list, categories: tuple[str, ...], limit: int | None) -> list:
    """The workload's queries of `categories` (all when empty), at most `limit` of each."""
    picked, seen = [], {}
    for q in queries:
        if categories and q.category not in categories:
            continue
        seen[q.category] = seen.get(q.category, 0) + 1
        if limit is None or seen[q.category] <= limit:
            picked.append(q)
    return picked
