"""Plan files: YAML or JSON, one experiment each. A plan says which queries (a selection
rule), at which output limits and GPU layers, how often sampled, with how many warm-ups and
repetitions, and how many settling readings to discard. Every error names the file and key."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from orchestrator.config import RunConfig
from orchestrator.errors import UserError
from orchestrator.workloads.schema import CATEGORIES

RULES = ("all", "median", "spread", "matched-pair")
KEYS = {"name", "description", "select", "max_tokens", "n_gpu_layers", "interval_s", "warmup", "repeat",
        "discard_first", "seed", "compare", "requires_gpu", "ignore_eos", "engine"}
SELECT_KEYS = {"rule", "categories", "count"}
NGL_KEYS = {"from", "to", "step"}
# The study's five, in the order `experiment all` runs them.
STUDY = ("categories", "granular", "prompt-sweep", "output-sweep", "matched-pair")
# Experiments of several parts in one folder: name -> (part, shipped plan, settings over the plan's).
# `engines`: the default workload answered by a33e6a0's main (one process per query, as the study
# did) and by its resident server, so the page shows what a resident model saves per category.
SUITES = {
    "all": tuple((n, n, {}) for n in STUDY),
    "engines": (("main", "categories", {"engine": "main"}), ("server", "categories", {"engine": "server"})),
}


@dataclass(frozen=True)
class Plan:
    name: str
    rule: str
    categories: tuple[str, ...] = CATEGORIES
    count: int | None = None  # spread: how many queries
    max_tokens: tuple[int, ...] = ()  # () keeps each query's own limit
    n_gpu_layers: dict | None = None  # {"from": 0, "to": "all" | int, "step": int}
    interval_s: float = RunConfig.interval_s  # left out of a plan: what a run samples at
    warmup: int = 0
    repeat: int = 1
    discard_first: int = 0  # readings of each sampler dropped from each measured query
    seed: int = RunConfig.seed
    compare: str | None = None  # matched-pair: the figure compared
    requires_gpu: bool = False
    # True: main runs with --ignore-eos, so every query generates exactly its max_tokens (a sweep over
    # output length, or a pair compared at one length, measures the lengths it asked for).
    # None: the run's choice (--ignore-eos/--stop-at-eos, else decided by the model).
    ignore_eos: bool | None = None
    engine: str | None = None  # None: the run's --engine (engine/registry.py)
    description: str = ""
    source: str = field(default="", compare=False)

    def to_json(self) -> dict:
        d = asdict(self)
        d["categories"], d["max_tokens"] = list(self.categories), list(self.max_tokens)
        return d


def plans_dir() -> Path:
    """The study's plans, shipped in the package (orchestrator/data/plans/)."""
    from orchestrator import packaged

    return packaged.plans_dir()


def builtin_names() -> list[str]:
    return sorted(p.stem for p in plans_dir().glob("*.yaml"))


def find(name: str) -> Path:
    path = plans_dir() / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"there is no experiment plan named {name!r}",
                        fix=f"one of: {', '.join(builtin_names() + ['all'])}, or --plan FILE")
    return path


def load(path: Path) -> Plan:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read plan {path}: {exc.strerror or exc}", fix="--plan PATH to a .yaml or .json plan") \
            from None
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise UserError(f"{path} is not valid JSON: {exc}", fix=f"correct {path}") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise UserError(f"{path} is not valid YAML: {exc}", fix=f"correct {path}") from None
    return from_dict(data, str(path))


def from_dict(data, where: str) -> Plan:
    def bad(key: str, why: str, fix: str | None = None):
        return UserError(f"{where}: {key}: {why}", fix=fix or f"correct '{key}' in {where}")

    if not isinstance(data, dict):
        raise UserError(f"{where}: a plan is a mapping of keys, got {type(data).__name__}",
                        fix=f"start from a plan in {plans_dir()}")
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise bad(unknown[0], "unknown key", f"keys a plan may have: {', '.join(sorted(KEYS))}")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise bad("name", "a plan needs a name (a non-empty string)")
    sel = data.get("select")
    if not isinstance(sel, dict):
        raise bad("select", "a plan needs a 'select' mapping with a 'rule'",
                  f"select: {{rule: one of {', '.join(RULES)}}}")
    unknown = sorted(set(sel) - SELECT_KEYS)
    if unknown:
        raise bad(f"select.{unknown[0]}", "unknown key", f"select may have: {', '.join(sorted(SELECT_KEYS))}")
    rule = sel.get("rule")
    if rule not in RULES:
        raise bad("select.rule", f"{rule!r} is not a selection rule", f"select.rule one of: {', '.join(RULES)}")
    cats = sel.get("categories", list(CATEGORIES))
    if isinstance(cats, str):
        cats = [cats]
    if not isinstance(cats, list) or not cats:
        raise bad("select.categories", "must be a list of categories")
    for c in cats:
        if c not in CATEGORIES:
            raise bad("select.categories", f"unknown category {c!r}", f"categories are: {', '.join(CATEGORIES)}")
    count = sel.get("count")
    if rule == "spread":
        if not _int(count) or count < 2:
            raise bad("select.count", "the spread rule needs a count of 2 or more queries")
        if len(cats) != 1:
            raise bad("select.categories", "the spread rule spreads within one category; name exactly one")
    elif count is not None:
        raise bad("select.count", f"only the spread rule takes a count (this plan's rule is {rule})")
    if rule == "matched-pair" and len(cats) != 2:
        raise bad("select.categories", "the matched-pair rule needs exactly two categories")

    mt = data.get("max_tokens")
    mt = [] if mt is None else ([mt] if not isinstance(mt, list) else mt)
    if not all(_int(x) and x > 0 for x in mt):
        raise bad("max_tokens", "must be a positive integer or a list of them")
    ngl = data.get("n_gpu_layers")
    if ngl is not None:
        if not isinstance(ngl, dict) or set(ngl) - NGL_KEYS:
            raise bad("n_gpu_layers", "must be a mapping {from: N, to: N or all, step: N}")
        ngl = {"from": ngl.get("from", 0), "to": ngl.get("to", "all"), "step": ngl.get("step", 1)}
        if not (_int(ngl["from"]) and ngl["from"] >= 0):
            raise bad("n_gpu_layers.from", "must be an integer >= 0")
        if not (ngl["to"] == "all" or (_int(ngl["to"]) and ngl["to"] >= ngl["from"])):
            raise bad("n_gpu_layers.to", "must be 'all' or an integer >= from")
        if not (_int(ngl["step"]) and ngl["step"] >= 1):
            raise bad("n_gpu_layers.step", "must be an integer >= 1")
    interval = data.get("interval_s", Plan.interval_s)
    if not isinstance(interval, int | float) or isinstance(interval, bool) or interval < 0.001:
        raise bad("interval_s", "must be a number of seconds >= 0.001")
    ints = {}
    for key, low, default in (("warmup", 0, 0), ("repeat", 1, 1), ("discard_first", 0, 0), ("seed", 0, Plan.seed)):
        v = data.get(key, default)
        if not _int(v) or v < low:
            raise bad(key, f"must be an integer >= {low}")
        ints[key] = v
    compare = data.get("compare")
    if compare is not None and (rule != "matched-pair" or not isinstance(compare, str)):
        raise bad("compare", "only a matched-pair plan compares, and it names one record figure (e.g. total_s)")
    requires_gpu = data.get("requires_gpu", ngl is not None)
    if not isinstance(requires_gpu, bool):
        raise bad("requires_gpu", "must be true or false")
    ignore_eos = data.get("ignore_eos")
    if ignore_eos is not None and not isinstance(ignore_eos, bool):
        raise bad("ignore_eos", "must be true or false (true: every query generates exactly its max_tokens)")
    engine = data.get("engine")
    if engine is not None:
        from orchestrator.engine import registry

        if engine not in registry.NAMES:
            raise bad("engine", f"{engine!r} is not an engine", f"engine: one of {', '.join(registry.NAMES)}")
    return Plan(name=name, rule=rule, engine=engine, categories=tuple(cats), count=count, max_tokens=tuple(mt),
                n_gpu_layers=ngl, interval_s=float(interval),
                compare=compare or ("total_s" if rule == "matched-pair" else None),
                requires_gpu=requires_gpu, ignore_eos=ignore_eos, description=str(data.get("description") or ""),
                source=where, **ints)


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
