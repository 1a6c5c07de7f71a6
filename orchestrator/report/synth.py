"""Generated run folders in the real format (through RunStore), shaped like a Jetson Nano run
with a GPU sampler: for the report's speed bench and its tests. Deterministic for a seed.
Never used to report a measurement: the manifest says `generated: true`."""

from __future__ import annotations

import json
import random
from pathlib import Path

from orchestrator.store import RunStore

TINYLLAMA = {"path": "/models/tinyllama-1.1b-chat-v1.0.Q5_K_M.gguf", "size_bytes": 782_000_000,
             "name": "TinyLlama-1.1B-Chat-v1.0", "architecture": "llama", "block_count": 22,
             "embedding_length": 2048, "head_count": 32, "head_count_kv": 4, "context_length": 2048,
             "file_type": 17, "file_type_name": "Q5_K_M", "synthetic": False, "twin_of": None,
             "sha256": "0" * 64}
PROMPT_TOKENS = {"simple": 12, "complex": 40, "conversational": 60, "task-oriented": 90, "contextual": 300}
MAX_TOKENS = {"simple": 30, "complex": 70, "conversational": 40, "task-oriented": 100, "contextual": 50}
NASTY = '<script>alert("x")</script> & "quotes"'


def kv_mib(ctx: int, model: dict = TINYLLAMA) -> float:
    head_dim = model["embedding_length"] // model["head_count"]
    return 2 * ctx * model["head_count_kv"] * head_dim * model["block_count"] * 2 / 2**20


def manifest(run_id: str, interval_s: float, model: dict = TINYLLAMA) -> dict:
    return {
        "run_id": run_id, "created_at": "2026-11-20T10:00:00+00:00", "finished_at": "2026-11-20T11:00:00+00:00",
        "edgebench_version": "0.0.0", "generated": True, "status": "finished",
        "config": {"threads": 4, "n_gpu_layers": 99, "seed": 42, "interval_s": interval_s, "ctx_min": 512},
        "platform": {"system": "Linux", "machine": "aarch64", "hostname": "nano",
                     "cpu_model": "ARMv8 Processor rev 1", "cpu_count": 4, "mem_total_bytes": 4_156_000_000,
                     "jetson_model": "NVIDIA Jetson Nano Developer Kit",
                     "l4t_release": "32.7.1", "cuda_version": "10.2", "profile": "jetson-nano"},
        # the shape orchestrator/board.py records at a run's start
        "board": {"start": {"nvpmodel": {"mode": "MAXN", "id": 0}, "jetson_clocks": True}},
        "binary": {"path": "/edgebench/build/llama.cpp/main", "sha256": "1" * 64, "commit": "a33e6a0",
                   "patch_state": "applied", "build_flags": {"backend": "cuda"}},
        "model": dict(model),
        "workload": {"path": "workloads/default.jsonl", "sha256": "2" * 64, "queries": []},
        "samplers": [{"name": "process", "interval_s": interval_s}, {"name": "jtop", "interval_s": interval_s}],
    }


def _series(rng, t_end: float, dt: float, t_echo: float, t_first: float, rss_peak: float, gpu: bool) -> tuple:
    proc, gpus, t, k = [], [], 0.0, 0
    while t <= t_end:
        loading = t < t_echo
        rss = rss_peak * (t / t_echo if loading else 1.0) * (0.95 + 0.05 * rng.random()) if loading else rss_peak
        cpu = 100 * rng.uniform(0.2, 0.4) if loading else (100 * rng.uniform(0.85, 1.0) if t < t_first else
                                                             100 * rng.uniform(0.3, 0.5))
        proc.append({"t_s": round(t, 4), "rss_bytes": int(rss), "cpu_pct": 0.0 if k == 0 else cpu * 4,
                     "cpu_pct_norm": 0.0 if k == 0 else cpu, "num_threads": 6, "dt_s": None if k == 0 else dt,
                     "sys_cpu_pct": cpu, "sys_mem_used_bytes": int(1.2e9 + rss)})
        if gpu:
            load = 0.0 if loading else (rng.uniform(90, 99) if t < t_first else rng.uniform(55, 75))
            gpus.append({"t_s": round(t, 4), "gpu_load_pct": load,
                         "gpu_mem_bytes": int((0 if loading else 1) * 6.0e8 + (t / t_end) * 1.2e7),
                         "ram_shared_bytes": int(6.5e8), "power_mw": int(4000 + 30 * load),
                         "power_gpu_mw": int(500 + 20 * load), "temp_gpu_c": 40 + t / 10, "gpu_freq_mhz": 921,
                         "emc_freq_mhz": 1600})
        t += dt
        k += 1
    return proc, gpus


def make_run(run_dir: Path, per_category: int = 3, interval_s: float = 0.5, granular_s: float | None = 0.01,
             gpu: bool = True, seed: int = 0, raw: bool = True, categories=tuple(PROMPT_TOKENS),
             repetitions: int = 1, variants: tuple[int, ...] = (), nasty: bool = True) -> Path:
    """A finished run: `per_category` queries per category, `repetitions` measured repetitions each
    (one warm-up before them when more than one), samples every `interval_s` and, for the first query
    of each category, every `granular_s`. `variants` runs each query once per max_tokens value."""
    rng = random.Random(seed)
    store = RunStore.create(run_dir, manifest(Path(run_dir).name, interval_s))
    ids = []
    for cat in categories:
        for i in range(per_category):
            qid = f"{cat}-{i + 1:02d}"
            ids.append(qid)
            prompt = f"Question {i} about {cat}?" + (f" {NASTY}" if nasty and i == 0 else "")
            n_prompt = PROMPT_TOKENS[cat] + rng.randint(-5, 5)
            reps = [("warmup", 0)] if repetitions > 1 else []
            reps += [("measure", r) for r in range(repetitions)]
            for max_tokens in variants or (MAX_TOKENS[cat],):
                variant = {"max_tokens": max_tokens} if variants else {}
                for phase, rep in reps:
                    _one(store, rng, qid, cat, prompt, n_prompt, max_tokens, variant, phase, rep,
                         granular_s if i == 0 and rep == 0 and phase == "measure" else None, interval_s, gpu, raw,
                         nasty and i == 0)
    store.update_manifest(workload=dict(store.manifest["workload"], queries=ids))
    return Path(run_dir)


def _one(store, rng, qid, cat, prompt, n_prompt, max_tokens, variant, phase, rep, granular_s, interval_s, gpu, raw,
         nasty_output):
    attempt = f"{qid}-{phase}-{rep}-{max_tokens}"
    load_s = rng.uniform(0.7, 0.9)
    ttft = n_prompt * 0.004 + rng.uniform(0.01, 0.03)
    tbt = [0.045 + 0.00002 * k + rng.uniform(0, 0.004) for k in range(1, max_tokens)]
    t_first = load_s + ttft
    t_last = t_first + sum(tbt)
    total = t_last + 0.05
    ctx = max(512, -(-(n_prompt + max_tokens + 8) // 64) * 64)
    rss = 7.0e8 + n_prompt * 2e4 + rng.uniform(0, 5e6)
    proc, gpus = _series(rng, total, granular_s or interval_s, load_s, t_first, rss, gpu)
    samples = [dict(s, sampler="process") for s in proc] + [dict(s, sampler="jtop") for s in gpus]
    decode = [g for g in gpus if t_first <= g["t_s"] <= t_last]
    prefill = [g for g in gpus if load_s <= g["t_s"] < t_first]
    tpot = (t_last - t_first) / (max_tokens - 1)
    record = {
        "query_id": qid, "category": cat, "attempt": attempt, "status": "ok", "exit_code": 0, "signal": None,
        "error": None, "max_tokens": max_tokens, "prompt_tokens_est": n_prompt, "prompt_tokens": n_prompt,
        "ctx_size": ctx, "output_tokens": max_tokens, "t_echo_s": load_s, "load_s": load_s, "ttft_s": ttft,
        "cold_ttft_s": t_first, "tbt_s": tbt, "tpot_s": tpot, "decode_tok_s": 1 / tpot,
        "prefill_tok_s": n_prompt / ttft, "total_s": total,
        "llama": {"t_p_eval_us": ttft * 1e6, "t_eval_us": sum(tbt) * 1e6, "n_eval": max_tokens - 1,
                  "kv_self_mib": round(kv_mib(ctx), 2), "n_gpu_layers": 99},
        "validation": {"ok": True, "checks": {"token_count": {"ok": True}}, "tbt_mean_rel_err": 0.01,
                       "prefill_abs_err_ms": 0.5},
        "peak_rss_bytes": int(max(s["rss_bytes"] for s in proc)), "main_cpu_s": total * 1.5, "harness_cpu_s": 0.02,
        "samplers": {"process": {"name": "process", "interval_s": granular_s or interval_s}},
        "raw_dir": attempt, "output_text": (NASTY + " answer") if nasty_output else f"answer to {qid}",
        "phase": phase, "repetition": rep, "variant": variant,
        "variant_id": ",".join(f"{k}={v}" for k, v in variant.items()), "n_samples": len(samples),
    }
    if gpu:
        energy = sum(g["power_mw"] for g in gpus) / 1000 * (granular_s or interval_s)
        record.update(gpu_load_prefill_mean_pct=_mean([g["gpu_load_pct"] for g in prefill]),
                      gpu_load_decode_mean_pct=_mean([g["gpu_load_pct"] for g in decode]),
                      gpu_load_peak_pct=max(g["gpu_load_pct"] for g in gpus),
                      gpu_mem_peak_bytes=max(g["gpu_mem_bytes"] for g in gpus),
                      shared_mem_peak_bytes=max(g["ram_shared_bytes"] for g in gpus), energy_j=energy,
                      energy_per_token_j=energy / max_tokens, temp_peak_c=max(g["temp_gpu_c"] for g in gpus),
                      throttled=False)
    if raw:
        d = store.dir / "raw" / attempt
        d.mkdir(parents=True, exist_ok=True)
        (d / "stream.json").write_text(json.dumps({"t_spawn_ns": 0, "argv": ["main", "-p", prompt, "-n",
                                                                               str(max_tokens)], "chunks": []}))
    store.append_samples(qid, attempt, samples)
    store.append_query(record)


def _mean(xs):
    return sum(xs) / len(xs) if xs else None


def make_experiment(exp_dir: Path, plan: str, parts: dict[str, dict], name: str | None = None) -> Path:
    """An experiment folder: experiment.json plus one generated run per part (make_run's options);
    a part whose options are None is listed but not run."""
    exp_dir = Path(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    listed = []
    for part, opts in parts.items():
        listed.append({"name": part, "run_dir": part})
        if opts is not None:
            make_run(exp_dir / part, **opts)
    (exp_dir / "experiment.json").write_text(json.dumps({"name": name or plan, "plan": plan, "parts": listed},
                                                        indent=2))
    return exp_dir
