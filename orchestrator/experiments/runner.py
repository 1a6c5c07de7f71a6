"""A resolved plan (experiments/resolve.py) run as one session, with its hooks (thermal gate,
experiment tag, discarding samplers); and `experiment all`: the study's five plans as parts of one experiment folder.

    reports/<id>/experiment.json   the index (experiments/index.py owns its format)
    reports/<id>/<part>/           a normal run folder per part

A part is resumed with Session.resume (each item exactly once) and a finished part is never
run again, so rerunning an interrupted `experiment all` completes it whatever stopped it."""

from __future__ import annotations

from pathlib import Path

from orchestrator import runconfig
from orchestrator import session as sess
from orchestrator.config import RunConfig
from orchestrator.errors import UserError
from orchestrator.experiments import index
from orchestrator.experiments import plans as plans_mod
from orchestrator.experiments.discard import Discarding, discarding
from orchestrator.experiments.resolve import Resolved, check_runnable, resolve
from orchestrator.store import MANIFEST


# -- hooks -------------------------------------------------------------------------------
def item_hook(name: str, part: str, gate=None, samplers=()):
    """Tags each record with its experiment and part, tells discarding samplers the item's
    phase, and lets a thermal gate wait first."""
    tag = {"experiment": {"name": name, "part": part}}

    def before(item) -> dict:
        for s in samplers:
            if isinstance(s, Discarding):
                s.phase = item.phase
        return {**(gate(item) if gate else {}), **tag}

    return before


def gating(cooldown: float, max_temp: float | None, temp_timeout: float) -> dict | None:
    """The thermal gating settings an experiment records, or None; refuses --max-temp on a machine
    without thermal zones at once, before anything runs."""
    if not cooldown and max_temp is None:
        return None
    from orchestrator.experiments.thermal import Gate

    Gate(cooldown, max_temp, temp_timeout)
    return {"cooldown_s": cooldown, "max_temp_c": max_temp, "timeout_s": temp_timeout}


def _gate_from(settings: dict | None, log):
    if not settings or (not settings.get("cooldown_s") and settings.get("max_temp_c") is None):
        return None
    from orchestrator.experiments.thermal import Gate

    return Gate(**settings, log=log)


# -- one plan ----------------------------------------------------------------------------
def start(res: Resolved, *, name: str | None = None, part: str | None = None, run_dir: Path | None = None,
          gating: dict | None = None, executor=None, samplers=None, log=print,
          extra_manifest: dict | None = None) -> sess.Session:
    check_runnable(res)
    name, part = name or res.plan.name, part or res.plan.name
    experiment = {"name": name, "part": part, "plan": res.plan.to_json(), "repeat": res.repeat,
                  "selection": res.summary()["queries"], "gating": gating}
    smp = discarding(samplers if samplers is not None else sess.default_samplers(res.cfg), res.plan.discard_first)
    return sess.Session.create(res.cfg, items_for=res.items, run_dir=run_dir, samplers=smp, executor=executor,
                               extra_manifest={"experiment": experiment, **(extra_manifest or {})}, log=log,
                               before_item=item_hook(name, part, _gate_from(gating, log), smp))


def resume(run_dir: Path, *, force: bool = False, executor=None, samplers=None, log=print) -> sess.Session:
    """Reopen a part (or a single plan's run) with the hooks its manifest records."""
    from orchestrator.store import RunReader

    manifest = RunReader(run_dir).manifest
    exp = manifest.get("experiment")
    if not exp:
        raise UserError(f"{run_dir} is a run folder, not an experiment's", fix=f"edgebench run --resume {run_dir}")
    if samplers is None:
        samplers = sess.default_samplers(runconfig.recorded(manifest["config"], Path(run_dir).parent))
    smp = discarding(samplers, exp["plan"].get("discard_first", 0))
    return sess.Session.resume(run_dir, force=force, executor=executor, samplers=smp, log=log,
                               before_item=item_hook(exp["name"], exp["part"], _gate_from(exp.get("gating"), log), smp))


def results(records: list[dict], plan: dict) -> dict:
    """What the plan measured, through the one statistics engine: per category, per query and
    variant, and for a matched pair the difference of the two sides with its 95% interval."""
    from orchestrator import fields as F
    from orchestrator import stats
    from orchestrator.workloads.schema import CATEGORIES

    out = {"by_category": stats.by_category(records, CATEGORIES), "ci95": stats.ci_by_item(records)}
    if index.role(plan) == index.MATCHED_PAIR:
        key = plan.get("compare") or F.TOTAL_S
        good = stats.ok(records)
        sides, values = [], []
        for cat in plan["categories"]:
            recs = [r for r in good if r[F.CATEGORY] == cat]
            values.append([r.get(key) for r in recs])
            sides.append({F.CATEGORY: cat, F.QUERY_ID: recs[0][F.QUERY_ID] if recs else None,
                          F.PROMPT_TOKENS: recs[0].get(F.PROMPT_TOKENS) if recs else None,
                          F.OUTPUT_TOKENS: sorted({r.get(F.OUTPUT_TOKENS) for r in recs} - {None}),
                          key: stats.describe(values[-1])})
        diff = stats.difference(*values)
        a, b = (s[key]["mean"] for s in sides)
        out["compare"] = {"figure": key, "sides": sides, **diff,
                          "ratio": None if not a or not b else a / b}
    return out


def finish_results(session) -> dict:
    recs = session.store.read_queries()
    res = results(recs, session.store.manifest["experiment"]["plan"])
    session.store.update_manifest(results=dict(session.store.manifest.get("results") or {}, **res))
    return res


# -- experiment all ----------------------------------------------------------------------
def suite_plans(suite: str) -> list:
    """The parts of a suite (plans.SUITES) as plans: each its shipped plan, with the suite's
    settings over it and the part's name."""
    import dataclasses

    return [dataclasses.replace(plans_mod.load(plans_mod.find(plan)), name=part, **settings)
            for part, plan, settings in plans_mod.SUITES[suite]]


def create_all(base: RunConfig, *, repeat: int | None = None, gating: dict | None = None,
               exp_dir: Path | None = None, suite: str = "all") -> tuple[Path, list[Resolved]]:
    """Resolve every plan of the suite (`all`: the study's five; each must be runnable before
    anything runs) and write the experiment folder's index."""
    from orchestrator.fsutil import fsync_dir
    from orchestrator.store import OUT_ELSEWHERE, check_writable, new_run_id

    check_writable(Path(exp_dir) if exp_dir else base.out_dir, OUT_ELSEWHERE)  # before resolving five plans

    resolved = [resolve(p, base, repeat=repeat) for p in suite_plans(suite)]
    for r in resolved:
        check_runnable(r)
    exp_dir = Path(exp_dir) if exp_dir else base.out_dir / new_run_id()
    if exp_dir.exists() and any(exp_dir.iterdir()):
        raise UserError(f"{exp_dir} already exists and is not empty",
                        fix=f"edgebench experiment {suite} --resume {exp_dir}")
    exp_dir.mkdir(parents=True, exist_ok=True)
    fsync_dir(exp_dir.parent)
    index.write(exp_dir, index.new(suite, sess.now(), base.to_json(), repeat, gating,
                                   [(r.plan.name, r.plan.to_json()) for r in resolved]))
    return exp_dir, resolved


def run_all(exp_dir: Path, *, run_session, force: bool = False, executor=None, samplers=None, log=print,
            on_lock=None) -> list:
    """Run every unfinished part in order. `run_session(session, part)` runs one (progress,
    printing) and returns its Result. A part with a run folder resumes; one without starts."""
    data = index.read(exp_dir)
    base = runconfig.recorded(data["config"], Path(data["config"]["out_dir"]))
    out = []
    data["status"] = "running"
    index.write(exp_dir, data)
    try:
        for part in data["parts"]:
            run_dir = index.part_dir(exp_dir, part)
            if part["status"] == "finished":
                log(f"{part['name']}: finished earlier, not run again")
                continue
            if (run_dir / MANIFEST).is_file():
                session = resume(run_dir, force=force, executor=executor, samplers=samplers, log=log)
            else:
                plan = plans_mod.Plan(**{**part["plan"], "categories": tuple(part["plan"]["categories"]),
                                         "max_tokens": tuple(part["plan"]["max_tokens"])})
                res = resolve(plan, base, repeat=data.get("repeat"))
                session = start(res, name=data["name"], part=part["name"], run_dir=run_dir, gating=data.get("gating"),
                                executor=executor, samplers=samplers, log=log)
            if on_lock:
                on_lock(session.store.dir)
            part["status"] = "running"
            index.write(exp_dir, data)
            result = run_session(session, part["name"])
            finish_results(session)
            part["status"] = "finished"
            part["n_failed"] = result.n_failed
            index.write(exp_dir, data)
            out.append(result)
        data["status"] = "finished"
        data["finished_at"] = sess.now()
    except BaseException:
        data["status"] = "interrupted"
        for part in data["parts"]:
            if part["status"] == "running":
                part["status"] = "interrupted"
        raise
    finally:
        index.write(exp_dir, data)
    return out
