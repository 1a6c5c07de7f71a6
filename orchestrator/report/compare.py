"""Two runs side by side: per category and metric, each run's median, mean and 95% CI, and the
ratio B / A. Runs of different devices, models or binaries measure different things, so they
are refused unless forced, naming the field that differs.

Runs that differ in engine (engine/registry.py: `main` one process per query, a resident `server`)
are compared without --force: the engine's program is part of the engine, so their binaries
differ by design. The page says so, and shows per category what the model's load costs each
query under A and under B: a resident server loads once per run, not once per query."""

from __future__ import annotations

from pathlib import Path

from orchestrator import fields as F
from orchestrator.errors import UserError
from orchestrator.experiments import index
from orchestrator.fsutil import atomic_write
from orchestrator.report import analysis, load
from orchestrator.report.render import env
from orchestrator.store import MANIFEST_ENGINE


def engine_of(manifest: dict) -> str:
    """The manifest's engine; a folder written before engines were named ran `main`."""
    return (manifest.get(MANIFEST_ENGINE) or {}).get("name") or "main"


# (label, how to read it from a manifest)
DEVICE = ("device", lambda m: (m.get("platform") or {}).get("jetson_model")
          or (m.get("platform") or {}).get("cpu_model"))
MODEL = ("model", lambda m: (m.get("model") or {}).get("sha256"))
BINARY = ("binary", lambda m: (m.get("binary") or {}).get("sha256"))
WORKLOAD = ("workload", lambda m: (m.get("workload") or {}).get("sha256"))
IDENTITY = [(MANIFEST_ENGINE, engine_of), DEVICE, MODEL, BINARY]


def differing(a: dict, b: dict, identity: list) -> list[tuple[str, object, object]]:
    """(label, value in a, value in b) of each `identity` entry whose values differ."""
    return [(label, get(a), get(b)) for label, get in identity if get(a) != get(b)]


def differences(a: dict, b: dict) -> list[tuple[str, object, object]]:
    """What differs between two runs that a comparison must not hide: with different engines, the
    engine (and so its program) is what is being compared, and is left out."""
    diff = differing(a, b, IDENTITY)
    if engine_of(a) != engine_of(b):
        diff = [d for d in diff if d[0] not in (MANIFEST_ENGINE, "binary")]
    return diff


def not_comparable(name_a: str, name_b: str, diff: list[tuple[str, object, object]], fix: str) -> UserError:
    """The refusal of runs whose figures must not be set side by side, naming the first field that differs."""
    label, va, vb = diff[0]
    return UserError(f"{name_a} and {name_b} differ in {label} ({va!s:.40} vs {vb!s:.40}), so their figures "
                     f"are not comparable" + (f"; they also differ in {', '.join(d[0] for d in diff[1:])}"
                                              if diff[1:] else ""), fix=fix)


def _blocks(src: load.Source) -> dict[tuple[str, str], dict]:
    q = load.measured(load.queries_frame(src))
    main = analysis.main_part(q)
    tbt = load.tbt_frame(src)
    if main.height < q.height:  # an experiment: compare its categories parts, as its page does
        tbt = tbt.filter(tbt[load.ROLE] == index.CATEGORIES)
    blocks, _ = analysis.category_metrics(main, tbt) if main.height else ([], [])
    return analysis.by_key(blocks)


def compare(a: Path, b: Path, force: bool = False, out: Path | None = None) -> tuple[Path, list]:
    """Write compare-<A>-vs-<B>.html beside A; returns it and the differences that --force let through."""
    sa, sb = load.load(a), load.load(b)
    diff = differences(sa.manifest, sb.manifest)
    if diff and not force:
        raise not_comparable(sa.name, sb.name, diff, "edgebench report --compare A B --force to compare them anyway")
    ba, bb = _blocks(sa), _blocks(sb)
    rows = []
    for key, label, unit, _ in analysis.METRICS:
        cats = analysis.category_order({c for k, c in list(ba) + list(bb) if k == key and c != "all"}) + ["all"]
        for cat in cats:
            ra, rb = ba.get((key, cat)), bb.get((key, cat))
            if not ra and not rb:
                continue
            ratio = rb["p50"] / ra["p50"] if ra and rb and ra.get("p50") else None
            rows.append({"key": key, "label": label, "unit": unit, F.CATEGORY: cat, "a": ra or {}, "b": rb or {},
                         "ratio": ratio})
    engines = (engine_of(sa.manifest), engine_of(sb.manifest))
    engine_rows = analysis.load_saved(ba, bb) if engines[0] != engines[1] else []
    server_load = [(s.manifest.get(MANIFEST_ENGINE) or {}).get("server_load_s") for s in (sa, sb)]
    out = Path(out) if out else Path(a).parent / f"compare-{Path(a).name}-vs-{Path(b).name}.html"
    html = env().get_template("compare.html").render(a=sa, b=sb, rows=rows, forced=diff, engines=engines,
                                                     engine_rows=engine_rows,
                                                     server_load=server_load,
                                                     facts_a=dict(analysis.facts(sa.manifest)),
                                                     facts_b=dict(analysis.facts(sb.manifest)))
    atomic_write(out, html.encode("utf-8"))
    return out, diff
