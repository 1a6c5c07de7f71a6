"""The selection rules, as pure functions over a workload's queries and their prompt token
counts (`tokens`: query id -> count). Each returns (query, why) pairs; the why is what
`--plan-only` prints, so a reader can check the rule was applied. Ties go to the query that
comes first in the workload, so a selection is the same on every run."""

from __future__ import annotations

import statistics

from orchestrator.errors import UserError


def in_category(queries: list, category: str) -> list:
    return [q for q in queries if q.category == category]


def _need(queries: list, category: str, n: int, rule: str) -> None:
    if len(queries) < n:
        raise UserError(f"the {rule} rule needs {n} {category} quer{'y' if n == 1 else 'ies'}, the workload has "
                        f"{len(queries)}", fix=f"--workload a file with more {category} queries, or change the plan")


def every(queries: list, categories: tuple[str, ...], tokens: dict) -> list[tuple[object, str]]:
    out = [(q, f"every query of {q.category}") for q in queries if q.category in categories]
    if not out:
        raise UserError(f"the workload has no query of {', '.join(categories)}", fix="--workload another file")
    return out


def median(queries: list, categories: tuple[str, ...], tokens: dict) -> list[tuple[object, str]]:
    """Per category, the query whose prompt length is closest to the category's median."""
    out = []
    for cat in categories:
        qs = in_category(queries, cat)
        _need(qs, cat, 1, "median")
        med = statistics.median(tokens[q.id] for q in qs)
        best = min(qs, key=lambda q: abs(tokens[q.id] - med))
        out.append((best, f"prompt {tokens[best.id]} tokens, closest to the {cat} median of {med:g} "
                          f"(over {len(qs)} queries, {min(tokens[q.id] for q in qs)}-{max(tokens[q.id] for q in qs)})"))
    return out


def spread(queries: list, category: str, count: int, tokens: dict) -> list[tuple[object, str]]:
    """`count` queries of increasing prompt length spread across the category's range: for
    k = 0..count-1 the query closest to min + k/(count-1) of the range, each a different
    query, each longer than the previous one."""
    qs = sorted(in_category(queries, category), key=lambda q: tokens[q.id])
    lengths = sorted({tokens[q.id] for q in qs})
    if len(lengths) < count:
        raise UserError(f"the spread rule needs {count} {category} queries of different prompt lengths, the "
                        f"workload has {len(lengths)}",
                        fix=f"--workload a file with more {category} queries, or a smaller select.count")
    lo, hi = lengths[0], lengths[-1]
    out, last = [], None
    for k in range(count):
        target = lo + (hi - lo) * k / (count - 1)
        # leave enough longer lengths for the picks still to come
        allowed = [q for q in qs if (last is None or tokens[q.id] > last)
                   and sum(1 for n in lengths if n > tokens[q.id]) >= count - 1 - k]
        best = min(allowed, key=lambda q: abs(tokens[q.id] - target))
        last = tokens[best.id]
        out.append((best, f"prompt {last} tokens, closest to {target:g} = {k}/{count - 1} of the way from "
                          f"{lo} to {hi} (the {category} range)"))
    return out


def matched_pair(queries: list, categories: tuple[str, str], tokens: dict) -> list[tuple[object, str]]:
    """One query of each category, the two with the smallest prompt-length difference."""
    a, b = (in_category(queries, c) for c in categories)
    _need(a, categories[0], 1, "matched-pair")
    _need(b, categories[1], 1, "matched-pair")
    qa, qb = min(((x, y) for x in a for y in b), key=lambda p: abs(tokens[p[0].id] - tokens[p[1].id]))
    diff = abs(tokens[qa.id] - tokens[qb.id])
    why = (f"closest prompt lengths between {categories[0]} and {categories[1]}: {tokens[qa.id]} vs "
           f"{tokens[qb.id]} tokens, a difference of {diff}")
    return [(qa, why), (qb, why)]


def apply(plan, queries: list, tokens: dict) -> list[tuple[object, str]]:
    if plan.rule == "all":
        return every(queries, plan.categories, tokens)
    if plan.rule == "median":
        return median(queries, plan.categories, tokens)
    if plan.rule == "spread":
        return spread(queries, plan.categories[0], plan.count, tokens)
    return matched_pair(queries, plan.categories, tokens)
