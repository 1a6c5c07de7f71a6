"""A resolved plan (experiments/resolve.py) run as one session, with its hooks (thermal gate,
experiment tag, discarding samplers); and `experiment all`: the study's five plans as parts of one experiment folder.

    reports/<id>/experiment.json   {"schema_version": 1, "name": "all", "created_at", "status",
                                    "parts": [{"name", "run_dir", "status", "plan"}, ...]}
    reports/<id>/<part>/           a normal run folder per part; its manifest["experiment"] is
                                   {"name", "part", "plan", ...}

A part is resumed with Session.resume (each item exactly once) and a finished part is never
run again, so rerunning an interrupted `experiment all` completes it whatever stopped it."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator import session as sess
from orchestrator.config import RunConfig
from orchestrator.errors import UserError
from orchestrator.experiments import plans as plans_mod
from orchestrator.experiments.discard import Discarding, discarding
from orchestrator.experiments.resolve import Resolved, check_runnable, resolve

EXPERIMENT = "experiment.json"
EXPERIMENT_SCHEMA = 1


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
        samplers = sess.default_samplers(sess.config_from_manifest(manifest, Path(run_dir).parent))
    smp = discarding(samplers, exp["plan"].get("discard_first", 0))
    return sess.Session.resume(run_dir, force=force, executor=executor, samplers=smp, log=log,
                               before_item=item_hook(exp["name"], exp["part"], _gate_from(exp.get("gating"), log), smp))


def results(records: list[dict], plan: dict) -> dict:
    """What the plan measured: 95% intervals per query and variant, and a matched pair's comparison."""
    from orchestrator import stats

    out = {"ci95": stats.ci_by_item(records)}
    if plan.get("rule") == "matched-pair":
        key = plan.get("compare") or "total_s"
        ok = [r for r in stats.measured(records) if r["status"] == "ok"]
        sides = []
        for cat in plan["categories"]:
            recs = [r for r in ok if r["category"] == cat]
            c = stats.ci95([r.get(key) for r in recs])
            sides.append({"category": cat, "query_id": recs[0]["query_id"] if recs else None,
                          "prompt_tokens": recs[0].get("prompt_tokens") if recs else None, key: c})
        a, b = (s[key]["mean"] for s in sides)
        out["compare"] = {"figure": key, "sides": sides,
                          "difference": None if a is None or b is None else a - b,
                          "ratio": None if not a or not b else a / b}
    return out


def finish_results(session) -> dict:
    recs = session.store.read_queries()
    res = results(recs, session.store.manifest["experiment"]["plan"])
    session.store.update_manifest(results=res)
    return res


# -- experiment all ----------------------------------------------------------------------
def _write(exp_dir: Path, data: dict) -> None:
    from orchestrator.fsutil import atomic_write

    atomic_write(exp_dir / EXPERIMENT, (json.dumps(data, indent=2) + "\n").encode())


def read_experiment(exp_dir: Path) -> dict:
    path = Path(exp_dir) / EXPERIMENT
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{exp_dir} is not an experiment folder (it has no {EXPERIMENT})",
                        fix="--resume the folder `experiment all` printed, reports/<id>/") from None
    except ValueError as exc:
        raise UserError(f"{path} is not valid JSON ({exc})", fix="restore it, or start a new experiment") from None
    if data.get("schema_version") != EXPERIMENT_SCHEMA:
        raise UserError(f"{path} has experiment schema {data.get('schema_version')!r}; this edgebench reads "
                        f"{EXPERIMENT_SCHEMA}", fix="start a new experiment")
    return data


def find_unfinished(out_dir: Path, name: str = "all") -> Path | None:
    """The newest experiment folder under `out_dir` that did not finish."""
    if not out_dir.is_dir():
        return None
    for path in sorted(out_dir.glob(f"*/{EXPERIMENT}"), reverse=True):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if data.get("name") == name and data.get("status") != "finished":
            return path.parent
    return None


def create_all(base: RunConfig, *, repeat: int | None = None, gating: dict | None = None,
               exp_dir: Path | None = None) -> tuple[Path, list[Resolved]]:
    """Resolve the study's five plans (every one must be runnable before anything runs) and
    write the experiment folder's index."""
    from orchestrator.fsutil import fsync_dir
    from orchestrator.store import new_run_id

    resolved = [resolve(plans_mod.load(plans_mod.find(n)), base, repeat=repeat) for n in plans_mod.STUDY]
    for r in resolved:
        check_runnable(r)
    exp_dir = Path(exp_dir) if exp_dir else base.out_dir / new_run_id()
    if exp_dir.exists() and any(exp_dir.iterdir()):
        raise UserError(f"{exp_dir} already exists and is not empty",
                        fix=f"edgebench experiment all --resume {exp_dir}")
    exp_dir.mkdir(parents=True, exist_ok=True)
    fsync_dir(exp_dir.parent)
    _write(exp_dir, {"schema_version": EXPERIMENT_SCHEMA, "name": "all", "created_at": sess.now(),
                     "status": "running", "config": base.to_json(), "repeat": repeat, "gating": gating,
                     "parts": [{"name": r.plan.name, "run_dir": r.plan.name, "status": "pending",
                                "plan": r.plan.to_json()} for r in resolved]})
    return exp_dir, resolved


def run_all(exp_dir: Path, *, run_session, force: bool = False, executor=None, samplers=None, log=print,
            on_lock=None) -> list:
    """Run every unfinished part in order. `run_session(session, part)` runs one (progress,
    printing) and returns its Result. A part with a run folder resumes; one without starts."""
    data = read_experiment(exp_dir)
    base = sess.config_from_manifest({"config": data["config"]}, Path(data["config"]["out_dir"]))
    out = []
    data["status"] = "running"
    _write(exp_dir, data)
    try:
        for part in data["parts"]:
            run_dir = Path(exp_dir) / part["run_dir"]
            if part["status"] == "finished":
                log(f"{part['name']}: finished earlier, not run again")
                continue
            if (run_dir / "manifest.json").is_file():
                session = resume(run_dir, force=force, executor=executor, samplers=samplers, log=log)
            else:
                plan = plans_mod.Plan(**{**part["plan"], "categories": tuple(part["plan"]["categories"]),
                                         "max_tokens": tuple(part["plan"]["max_tokens"])})
                res = resolve(plan, base, repeat=data.get("repeat"))
                session = start(res, name="all", part=part["name"], run_dir=run_dir, gating=data.get("gating"),
                                executor=executor, samplers=samplers, log=log)
            if on_lock:
                on_lock(session.store.dir)
            part["status"] = "running"
            _write(exp_dir, data)
            result = run_session(session, part["name"])
            finish_results(session)
            part["status"] = "finished"
            part["n_failed"] = result.n_failed
            _write(exp_dir, data)
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
        _write(exp_dir, data)
    return out
