"""A plan resolved against a workload and a binary (the items it will run, and why), run as
one session; and `experiment all`: the study's five plans as parts of one experiment folder.

    reports/<id>/experiment.json   {"schema_version": 1, "name": "all", "created_at", "status",
                                    "parts": [{"name", "run_dir", "status", "plan"}, ...]}
    reports/<id>/<part>/           a normal run folder per part; its manifest["experiment"] is
                                   {"name", "part", "plan", ...}

A part is resumed with Session.resume (each item exactly once) and a finished part is never
run again, so rerunning an interrupted `experiment all` completes it whatever stopped it."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from orchestrator import session as sess
from orchestrator.config import RunConfig
from orchestrator.errors import UserError
from orchestrator.experiments import plans as plans_mod
from orchestrator.experiments import select

EXPERIMENT = "experiment.json"
EXPERIMENT_SCHEMA = 1


# -- resolving ---------------------------------------------------------------------------
def gpu_offload(binary: Path) -> tuple[bool, str]:
    """Whether this `main` can offload layers, and how we know: the bootstrap ledger's build
    backend for this very binary, else its --help (a33e6a0 lists -ngl only in GPU builds; a CPU
    build warns and ignores the option, so a sweep would measure the same thing N times)."""
    backend = ((sess.binary_facts(binary).get("build_flags") or {}).get("backend"))
    if backend:
        if backend == "cpu":
            return False, f"the bootstrap ledger records {binary} as a CPU build (backend cpu)"
        return True, f"the bootstrap ledger records {binary} as a {backend} build"
    try:
        proc = subprocess.run([str(binary), "--help"], capture_output=True, text=True, errors="replace", timeout=30,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"`{binary} --help` could not be run ({exc}), so GPU offload cannot be confirmed"
    text = proc.stdout + proc.stderr
    if "--n-gpu-layers" in text or "-ngl" in text:
        return True, f"`{binary} --help` lists -ngl/--n-gpu-layers"
    return False, f"`{binary} --help` has no -ngl/--n-gpu-layers option: it was built without GPU offload"


@dataclass
class Resolved:
    plan: plans_mod.Plan
    cfg: RunConfig
    picks: list  # (query, why)
    tokens: dict  # query id -> prompt tokens
    counted: set  # ids whose count came from the tokenizer, not the workload
    variants: list[dict]
    repeat: int
    runnable: bool = True
    why_not: str | None = None
    gpu: str | None = None

    def items(self, queries: list | None = None) -> list:
        """The session items; `queries` (the session's own objects) replace the picked ones by id."""
        by_id = {q.id: q for q in queries or []}
        chosen = [by_id.get(q.id, q) for q, _ in self.picks]
        return sess.plan_items(chosen, self.plan.warmup, self.repeat, self.variants)

    def summary(self) -> dict:
        from orchestrator.engine.argv import ctx_size_for

        rows = []
        for q, why in self.picks:
            limits = [v.get("max_tokens", q.max_tokens) for v in self.variants] or [q.max_tokens]
            limits = list(dict.fromkeys(limits))
            rows.append({"id": q.id, "category": q.category, "prompt_tokens": self.tokens[q.id],
                         "prompt_tokens_from": "tokenizer" if q.id in self.counted else "workload estimate",
                         "max_tokens": limits,
                         "ctx_size": [ctx_size_for(self.tokens[q.id], n, self.cfg.ctx_min) for n in limits],
                         "why": why})
        out = {"experiment": self.plan.name, "plan_file": self.plan.source, "description": self.plan.description,
               "rule": self.plan.rule, "would_run": self.runnable}
        if not self.runnable:
            out["why_not"] = self.why_not
        if self.gpu:
            out["gpu_offload"] = self.gpu
        out.update(interval_s=self.plan.interval_s, warmup=self.plan.warmup, repeat=self.repeat,
                   discard_first_readings=self.plan.discard_first, seed=self.plan.seed,
                   variants=self.variants, queries=rows, n_items=len(self.items()) if self.runnable else 0)
        if self.plan.rule == "matched-pair":
            a, b = (self.tokens[q.id] for q, _ in self.picks)
            out["matched_pair"] = {"prompt_tokens": [a, b], "difference_tokens": abs(a - b),
                                   "compare": self.plan.compare}
        if self.plan.rule == "spread":
            out["spread"] = {"prompt_tokens": [self.tokens[q.id] for q, _ in self.picks]}
        return out


def plan_config(plan: plans_mod.Plan, base: RunConfig) -> RunConfig:
    return dataclasses.replace(base, interval_s=plan.interval_s, seed=plan.seed, categories=(), limit=None)


def resolve(plan: plans_mod.Plan, base: RunConfig, *, repeat: int | None = None) -> Resolved:
    """Every check and choice before a run folder exists; raises UserError for what cannot run,
    except a missing GPU build, which is reported in the result (--plan-only explains it)."""
    cfg = plan_config(plan, base)
    prep = sess.prepare(cfg)
    wanted = [q for q in prep.queries if q.category in plan.categories]
    tokens, counted = {}, set()
    for q in wanted:
        if q.prompt_tokens_est:
            tokens[q.id] = q.prompt_tokens_est
        else:
            from orchestrator.workloads.tokens import count_tokens

            try:
                tokens[q.id] = count_tokens(q.prompt, prep.tokenizer, cfg.model)
            except ValueError as exc:
                raise UserError(f"cannot count the prompt tokens of {q.id}: {exc}",
                                fix="edgebench workloads build (stores prompt_tokens_est)") from None
            counted.add(q.id)
    picks = select.apply(plan, wanted, tokens)
    variants = [{"max_tokens": n} for n in plan.max_tokens] or [{}]
    runnable, why_not, gpu = True, None, None
    if plan.n_gpu_layers is not None:
        n_layers = prep.model_info.get("block_count")
        ngl = plan.n_gpu_layers
        top = n_layers if ngl["to"] == "all" else ngl["to"]
        if top is None:
            raise UserError(f"{cfg.model} does not say how many layers it has, so 'to: all' cannot be resolved",
                            fix=f"set n_gpu_layers.to to a number in {plan.source}")
        if ngl["from"] > top:
            raise UserError(f"{plan.source}: n_gpu_layers.from is {ngl['from']}, more than the {top} layers of "
                            f"{cfg.model.name}", fix=f"set n_gpu_layers.from to at most {top}")
        steps = list(range(ngl["from"], top + 1, ngl["step"]))
        if steps[-1] != top:
            steps.append(top)  # "to all" must end at all of them, whatever the step
        variants = [dict(v, n_gpu_layers=n) for v in variants for n in steps]
    if plan.requires_gpu:
        runnable, gpu = gpu_offload(cfg.binary)
        if not runnable:
            why_not = (f"{plan.name} varies the layers offloaded to the GPU, and {gpu}; every step would "
                       "measure the same CPU run")
    variants = [] if variants == [{}] else variants  # [] = each query at its own limit
    return Resolved(plan, cfg, picks, tokens, counted, variants, repeat or plan.repeat, runnable, why_not, gpu)


# bootstrap builds with CUDA for the Jetson profiles only; a host build is CPU-only.
NO_GPU_FIX = ("run it on a Jetson after edgebench bootstrap (its build has CUDA), or pass --binary PATH to a "
              "llama.cpp main built with LLAMA_CUBLAS=1")


def check_runnable(res: Resolved) -> None:
    if not res.runnable:
        raise UserError(f"not running {res.plan.name}: {res.why_not}", fix=NO_GPU_FIX)


# -- hooks -------------------------------------------------------------------------------
class Discarding:
    """Wraps a sampler so that the first `n` readings of each measured item are marked
    `discard: true` when they are stored (the study dropped them: the process is still
    settling) and left out of the figures the sampler aggregates into the record. Warm-ups
    are marked by their phase instead. The session's before_item hook sets the phase."""

    def __init__(self, inner, n: int):
        self.inner, self.n, self.phase = inner, n, "measure"

    def __getattr__(self, attr):  # name, kind, set_interval, ...
        return getattr(self.inner, attr)

    def open(self):
        self.inner.open()

    def close(self):
        self.inner.close()

    def start(self, pid, t0_ns):
        self.inner.start(pid, t0_ns)

    def stop(self) -> list[dict]:
        samples = self.inner.stop()
        if self.phase != "measure":
            return samples
        first = set(sorted(range(len(samples)), key=lambda i: samples[i].get("t_s", 0))[: self.n])
        return [dict(s, discard=True) if i in first else s for i, s in enumerate(samples)]

    def aggregate(self, samples, timeline):
        return self.inner.aggregate([s for s in samples if not s.get("discard")], timeline)

    def info(self):
        return dict(self.inner.info(), discard_first=self.n)


def discarding(samplers: list, n: int) -> list:
    return [Discarding(s, n) for s in samplers] if n else samplers


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
          gating: dict | None = None, executor=None, samplers=None, log=print) -> sess.Session:
    check_runnable(res)
    name, part = name or res.plan.name, part or res.plan.name
    experiment = {"name": name, "part": part, "plan": res.plan.to_json(), "repeat": res.repeat,
                  "selection": res.summary()["queries"], "gating": gating}
    smp = discarding(samplers if samplers is not None else sess.default_samplers(res.cfg), res.plan.discard_first)
    return sess.Session.create(res.cfg, items_for=res.items, run_dir=run_dir, samplers=smp, executor=executor,
                               extra_manifest={"experiment": experiment}, log=log,
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
    from orchestrator.store import _atomic_write

    _atomic_write(exp_dir / EXPERIMENT, (json.dumps(data, indent=2) + "\n").encode())


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
    from orchestrator.store import _fsync_dir, new_run_id

    resolved = [resolve(plans_mod.load(plans_mod.find(n)), base, repeat=repeat) for n in plans_mod.STUDY]
    for r in resolved:
        check_runnable(r)
    exp_dir = Path(exp_dir) if exp_dir else base.out_dir / new_run_id()
    if exp_dir.exists() and any(exp_dir.iterdir()):
        raise UserError(f"{exp_dir} already exists and is not empty",
                        fix=f"edgebench experiment all --resume {exp_dir}")
    exp_dir.mkdir(parents=True, exist_ok=True)
    _fsync_dir(exp_dir.parent)
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
