"""The study's "prompt length per category" table, from a built workload file."""

from __future__ import annotations

import statistics

from orchestrator.errors import UserError

from .build import format_table
from .schema import CATEGORIES, Query


def stats_rows(queries: list[Query]) -> list[dict]:
    rows = []
    for category in CATEGORIES:
        qs = [q for q in queries if q.category == category]
        if not qs:
            continue
        est = [q.prompt_tokens_est for q in qs if q.prompt_tokens_est is not None]
        limits = sorted({q.max_tokens for q in qs})
        rows.append(
            {
                "category": category,
                "n": len(qs),
                "counted": len(est),
                "mean": statistics.fmean(est) if est else None,
                "median": statistics.median(est) if est else None,
                "min": min(est) if est else None,
                "max": max(est) if est else None,
                "max_tokens": limits[0] if len(limits) == 1 else f"{limits[0]}-{limits[-1]}",
            }
        )
    return rows


def format_stats(queries: list[Query], path: str) -> str:
    rows = stats_rows(queries)
    if not any(r["counted"] for r in rows):
        raise UserError(
            f"{path} has no prompt token counts (prompt_tokens_est is null)",
            fix="rebuild it with counting: edgebench workloads build ... (without --no-count)",
        )

    def num(v, fmt="{:.0f}"):
        return "-" if v is None else fmt.format(v)

    table = [("category", "queries", "mean prompt tok", "median", "min", "max", "output limit")]
    for r in rows:
        table.append(
            (
                r["category"],
                str(r["n"]),
                num(r["mean"], "{:.1f}"),
                num(r["median"], "{:g}"),
                num(r["min"]),
                num(r["max"]),
                str(r["max_tokens"]),
            )
        )
    lines = format_table(table)
    missing = sum(r["n"] - r["counted"] for r in rows)
    if missing:
        lines.append(
            f"note: {missing} queries have no prompt_tokens_est and are left out of the "
            "figures; rebuild with counting (edgebench workloads build, without --no-count)"
        )
    return "\n".join(lines)
