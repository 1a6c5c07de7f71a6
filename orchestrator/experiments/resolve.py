"""A plan resolved against a workload, a model and a binary: the queries its rule picks (and
why), their prompt token counts, the variants (output limits, GPU layers), and whether this
binary can run it at all. Nothing here writes a file: `--plan-only` prints the result."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from orchestrator import runconfig, runfacts
from orchestrator import session as sess
from orchestrator.config import RunConfig
from orchestrator.errors import UserError
from orchestrator.experiments import plans as plans_mod
from orchestrator.experiments import rules
from orchestrator.planning import plan_items


def gpu_offload(binary: Path) -> tuple[bool, str]:
    """Whether this `main` can offload layers, and how we know: the bootstrap ledger's build
    backend for this very binary, else its --help (a33e6a0 lists -ngl only in GPU builds; a CPU
    build warns and ignores the option, so a sweep would measure the same thing N times)."""
    backend = ((runfacts.binary_facts(binary).get("build_flags") or {}).get("backend"))
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
        return plan_items(chosen, self.plan.warmup, self.repeat, self.variants)

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
        out.update(interval_s=self.plan.interval_s, ignore_eos=self.cfg.ignore_eos, warmup=self.plan.warmup,
                   repeat=self.repeat, discard_first_readings=self.plan.discard_first, seed=self.plan.seed,
                   variants=self.variants, queries=rows, n_items=len(self.items()) if self.runnable else 0)
        if self.plan.rule == "matched-pair":
            a, b = (self.tokens[q.id] for q, _ in self.picks)
            out["matched_pair"] = {"prompt_tokens": [a, b], "difference_tokens": abs(a - b),
                                   "compare": self.plan.compare}
        if self.plan.rule == "spread":
            out["spread"] = {"prompt_tokens": [self.tokens[q.id] for q, _ in self.picks]}
        return out


def resolve(plan: plans_mod.Plan, base: RunConfig, *, repeat: int | None = None) -> Resolved:
    """Every check and choice before a run folder exists; raises UserError for what cannot run,
    except a missing GPU build, which is reported in the result (--plan-only explains it)."""
    cfg = runconfig.with_plan(base, plan)
    prep = sess.prepare(cfg)
    wanted = [q for q in prep.queries if q.category in plan.categories]
    tokens, counted = {}, set()
    for q in wanted:
        if q.prompt_tokens_est:
            tokens[q.id] = q.prompt_tokens_est
        else:
            from orchestrator.workloads.tokencount import count_tokens

            try:
                tokens[q.id] = count_tokens(q.prompt, prep.tokenizer, cfg.model)
            except ValueError as exc:
                raise UserError(f"cannot count the prompt tokens of {q.id}: {exc}",
                                fix="edgebench workloads build (stores prompt_tokens_est)") from None
            counted.add(q.id)
    picks = rules.apply(plan, wanted, tokens)
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
