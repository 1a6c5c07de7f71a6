"""The report's statistics, computed from the raw records at render time (nothing upstream
pre-aggregates): per-category distributions with confidence intervals, repetitions' spread,
timing validation, TBT against token position, the KV cache from the GGUF metadata and the
memory-bandwidth roofline."""

from __future__ import annotations

import math

import polars as pl

from orchestrator.report.load import board_setting
from orchestrator.workloads.schema import CATEGORIES

# Bytes per KV cache element: llama.cpp a33e6a0 keeps K and V in F16 unless told otherwise.
KV_BYTES_PER_ELEMENT = 2
# LPDDR4 of the Jetson Nano 4GB: 64-bit bus at 1600 MHz, two transfers a clock.
BANDWIDTH_GBS = {"jetson-nano": 25.6}

# (column, label, unit, scale to the unit). TBT is pooled over every token gap, not per query.
METRICS = [
    ("ttft_s", "TTFT", "ms", 1e3),
    ("tbt_s", "TBT (every token gap)", "ms", 1e3),
    ("tpot_s", "TPOT", "ms", 1e3),
    ("total_s", "total time", "s", 1.0),
    ("load_s", "load time (spawn to prompt echo, apart from TTFT)", "s", 1.0),
    ("decode_tok_s", "decode speed", "tok/s", 1.0),
    ("prefill_tok_s", "prefill speed", "tok/s", 1.0),
    ("peak_rss_bytes", "peak RSS", "MB", 1e-6),
    ("gpu_load_prefill_mean_pct", "GPU load during prefill (mean)", "%", 1.0),
    ("gpu_load_decode_mean_pct", "GPU load during decode (mean)", "%", 1.0),
    ("gpu_load_peak_pct", "GPU load peak", "%", 1.0),
    ("gpu_mem_peak_bytes", "GPU memory of the process, peak", "MB", 1e-6),
    ("shared_mem_peak_bytes", "shared (NvMap) memory, peak", "MB", 1e-6),
    ("energy_j", "energy per query", "J", 1.0),
    ("energy_per_token_j", "energy per output token", "mJ", 1e3),
    ("temp_peak_c", "temperature peak", "°C", 1.0),
]

# Two-sided 95% Student t quantiles; a df between two entries takes the smaller df's (wider) value.
_T95 = [(1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (5, 2.571), (6, 2.447), (7, 2.365), (8, 2.306),
        (9, 2.262), (10, 2.228), (12, 2.179), (15, 2.131), (20, 2.086), (25, 2.060), (30, 2.042), (40, 2.021),
        (60, 2.000), (120, 1.980)]


def t95(df: int) -> float:
    if df >= 1000:
        return 1.96
    return [t for d, t in _T95 if d <= df][-1]


def category_order(categories) -> list[str]:
    present = [c for c in categories if c is not None]
    return [c for c in CATEGORIES if c in present] + sorted(set(present) - set(CATEGORIES))


def _stats(values: pl.Series) -> dict:
    """n, mean, std, p50, p90, p99 (linear interpolation, numpy's default) and the 95% CI of the mean."""
    v = values.drop_nulls()
    n = len(v)
    if n == 0:
        return {"n": 0}
    mean = float(v.mean())
    std = float(v.std()) if n > 1 else 0.0
    half = t95(n - 1) * std / math.sqrt(n) if n > 1 else None
    q = {f"p{p}": float(v.quantile(p / 100, interpolation="linear")) for p in (50, 90, 99)}
    return {"n": n, "mean": mean, "std": std, "min": float(v.min()), "max": float(v.max()), **q,
            "ci_lo": None if half is None else mean - half, "ci_hi": None if half is None else mean + half}


def _scaled(s: dict, scale: float) -> dict:
    return {k: (v * scale if isinstance(v, float) and k != "n" else v) for k, v in s.items()}


def category_metrics(q: pl.DataFrame, tbt: pl.DataFrame) -> tuple[list[dict], list[str]]:
    """One block per metric that has data; the labels of those that have none."""
    ok = q.filter(pl.col("status") == "ok")
    cats = category_order(q["category"].unique().to_list())
    blocks, absent = [], []
    for col, label, unit, scale in METRICS:
        frame, value = (tbt, "tbt_s") if col == "tbt_s" else (ok, col)
        if value not in frame.columns or frame[value].drop_nulls().is_empty():
            absent.append(label)
            continue
        rows = []
        for cat in cats:
            s = _stats(frame.filter(pl.col("category") == cat)[value])
            if s["n"]:
                rows.append({"category": cat, **_scaled(s, scale)})
        rows.append({"category": "all", **_scaled(_stats(frame[value]), scale)})
        blocks.append({"key": col, "label": label, "unit": unit, "rows": rows})
    return blocks, absent


def failures(q: pl.DataFrame) -> list[dict]:
    """Per category: attempts, ok, each failure status, validation flags and throttled queries."""
    rows = []
    for cat in category_order(q["category"].unique().to_list()) + ["all"]:
        sub = q if cat == "all" else q.filter(pl.col("category") == cat)
        statuses = sub["status"].value_counts()
        by = {s: int(n) for s, n in zip(statuses["status"].to_list(), statuses["count"].to_list(), strict=True)}
        ok = sub.filter(pl.col("status") == "ok")
        flagged = int((ok["validation_ok"] == False).sum()) if "validation_ok" in ok.columns else 0  # noqa: E712
        throttled = int(sub["throttled"].fill_null(False).sum()) if "throttled" in sub.columns else None
        rows.append({"category": cat, "attempts": sub.height, "ok": by.pop("ok", 0), "failed": by,
                     "validation_flagged": flagged, "throttled": throttled})
    return rows


def repetition_spread(q: pl.DataFrame) -> list[dict]:
    """Per (query, variant) measured more than once: the spread of its repetitions."""
    if q.is_empty():
        return []
    # an experiment's parts may run the same query: a repetition is one of the same part's
    keys = ["part", "query_id", "variant_id"]
    ok = q.filter(pl.col("status") == "ok").with_columns(
        [(pl.col(k) if k in q.columns else pl.lit(None)).cast(pl.Utf8).fill_null("").alias(k) for k in keys])
    counts = ok.group_by(keys).len().filter(pl.col("len") > 1)
    rows = []
    for part, query_id, variant_id, _n in counts.sort(keys).iter_rows():
        sub = ok.filter((pl.col("part") == part) & (pl.col("query_id") == query_id)
                        & (pl.col("variant_id") == variant_id))
        row = {"part": part, "query_id": query_id, "variant_id": variant_id, "category": sub["category"][0]}
        for col, scale in (("ttft_s", 1e3), ("total_s", 1.0), ("decode_tok_s", 1.0)):
            if col in sub.columns:
                s = _scaled(_stats(sub[col]), scale)
                if s["n"]:
                    s["cv_pct"] = 100 * s["std"] / s["mean"] if s["mean"] else None
                row[col] = s
        rows.append(row)
    return rows


def validation(records: list[dict]) -> tuple[list[dict], list[dict]]:
    """Per category: how many ok queries were checked against llama.cpp's own timings, how many
    disagree, the worst errors; and every flagged query with the checks that failed."""
    per: dict[str, dict] = {}
    flagged = []
    for r in records:
        if r.get("status") != "ok" or r.get("phase", "measure") != "measure":
            continue
        v = r.get("validation")
        row = per.setdefault(r.get("category"), {"checked": 0, "flagged": 0, "unchecked": 0,
                                                  "tbt_rel_err_max": None, "prefill_err_ms_max": None})
        if not isinstance(v, dict):
            row["unchecked"] += 1
            continue
        row["checked"] += 1
        for key, name in (("tbt_mean_rel_err", "tbt_rel_err_max"), ("prefill_abs_err_ms", "prefill_err_ms_max")):
            if v.get(key) is not None:
                row[name] = max(row[name] or 0.0, float(v[key]))
        if not v.get("ok"):
            row["flagged"] += 1
            bad = {k: c for k, c in (v.get("checks") or {}).items() if isinstance(c, dict) and not c.get("ok")}
            flagged.append({"query_id": r.get("query_id"), "category": r.get("category"), "attempt": r.get("attempt"),
                            "checks": bad})
    rows = [{"category": c, **per[c]} for c in category_order(per)]
    return rows, flagged


def tbt_by_position(tbt: pl.DataFrame) -> tuple[pl.DataFrame, list[dict]]:
    """Median TBT at each token position per category, and the least-squares slope of TBT on
    position: does decoding slow down as the KV cache grows?"""
    if tbt.is_empty():
        return tbt, []
    med = (tbt.group_by(["category", "position"]).agg(pl.col("tbt_s").median().alias("tbt_s"), pl.len().alias("n"))
           .sort(["category", "position"]))
    trends = []
    for cat in category_order(tbt["category"].unique().to_list()):
        sub = tbt.filter(pl.col("category") == cat)
        x, y = sub["position"].cast(pl.Float64), sub["tbt_s"]
        if sub.height < 3 or float(x.var()) == 0:
            continue
        slope = float(((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum())
        top = int(x.max())
        quarter = max(1, top // 4)
        first = float(sub.filter(pl.col("position") <= quarter)["tbt_s"].median())
        last = float(sub.filter(pl.col("position") > top - quarter)["tbt_s"].median())
        trends.append({"category": cat, "gaps": sub.height, "max_position": int(x.max()),
                       "slope_ms_per_100_tokens": slope * 1e3 * 100, "first_quarter_ms": first * 1e3,
                       "last_quarter_ms": last * 1e3, "last_over_first": last / first if first else None})
    return med, trends


def kv_cache(model: dict, records: list[dict]) -> dict:
    """KV cache bytes from the GGUF metadata with grouped-query attention,
    2 * n_ctx * n_kv_heads * head_dim * n_layers * bytes, beside what llama.cpp reported."""
    n_layers, n_embd = model.get("block_count"), model.get("embedding_length")
    n_head = model.get("head_count")
    n_kv = model.get("head_count_kv") or n_head
    if not (n_layers and n_embd and n_head and n_kv):
        return {"available": False, "rows": []}
    head_dim = n_embd // n_head
    by_ctx: dict[int, list[float]] = {}
    for r in records:
        ctx = r.get("ctx_size") or (r.get("llama") or {}).get("ctx_size")
        if ctx:
            by_ctx.setdefault(int(ctx), [])
            reported = (r.get("llama") or {}).get("kv_self_mib")
            if reported is not None:
                by_ctx[int(ctx)].append(float(reported))
    rows = []
    for ctx in sorted(by_ctx):
        computed = 2 * ctx * n_kv * head_dim * n_layers * KV_BYTES_PER_ELEMENT
        reported = sorted(set(by_ctx[ctx]))
        rows.append({"ctx_size": ctx, "computed_mib": computed / 2**20, "reported_mib": reported,
                     "agrees": bool(reported) and all(abs(m - computed / 2**20) < 0.01 for m in reported)})
    return {"available": True, "n_layers": n_layers, "n_kv_heads": n_kv, "n_heads": n_head, "head_dim": head_dim,
            "bytes": KV_BYTES_PER_ELEMENT, "rows": rows}


def bandwidth_for(manifest: dict, override_gbs: float | None) -> tuple[float | None, str]:
    if override_gbs:
        return override_gbs, "given with --bandwidth-gbs"
    profile = (manifest.get("platform") or {}).get("profile")
    if profile in BANDWIDTH_GBS:
        return BANDWIDTH_GBS[profile], f"the {profile} memory bandwidth"
    return None, ""


def roofline(q: pl.DataFrame, manifest: dict, bandwidth_gbs: float | None) -> dict:
    """Decode reads every weight once per token, so tokens/s cannot exceed bandwidth / model bytes."""
    model_bytes = (manifest.get("model") or {}).get("size_bytes")
    bw, why = bandwidth_for(manifest, bandwidth_gbs)
    if not model_bytes or not bw or "decode_tok_s" not in q.columns:
        return {"available": False, "bandwidth_gbs": bw, "model_bytes": model_bytes}
    ceiling = bw * 1e9 / model_bytes
    ok = q.filter(pl.col("status") == "ok")
    rows = []
    for cat in category_order(ok["category"].unique().to_list()) + ["all"]:
        sub = ok if cat == "all" else ok.filter(pl.col("category") == cat)
        v = sub["decode_tok_s"].drop_nulls()
        if not v.is_empty():
            med = float(v.median())
            rows.append({"category": cat, "decode_tok_s_p50": med, "fraction": med / ceiling})
    return {"available": bool(rows), "bandwidth_gbs": bw, "bandwidth_source": why, "model_bytes": model_bytes,
            "ceiling_tok_s": ceiling, "rows": rows}


def clocks(samples: pl.DataFrame) -> str | None:
    """Median and range of the clocks the GPU sampler read during the queries, where it read them."""
    parts = []
    for col, name in (("gpu_freq_mhz", "GPU"), ("emc_freq_mhz", "memory (EMC)"), ("cpu_freq_mhz", "CPU")):
        if col in samples.columns and not samples[col].drop_nulls().is_empty():
            v = samples[col].drop_nulls()
            parts.append(f"{name} {float(v.median()):.0f} MHz median ({float(v.min()):.0f}-{float(v.max()):.0f})")
    return ", ".join(parts) or None


def facts(manifest: dict, measured_clocks: str | None = None) -> list[tuple[str, str]]:
    """The manifest's device, power mode, clocks, binary, flags, model and workload as labelled lines."""
    p, b, m = manifest.get("platform") or {}, manifest.get("binary") or {}, manifest.get("model") or {}
    c, w = manifest.get("config") or {}, manifest.get("workload") or {}

    def show(x):
        return "not recorded" if x in (None, "", {}, []) else str(x)

    device = p.get("jetson_model") or p.get("cpu_model")
    mem = p.get("mem_total_bytes")
    flags = {k: c.get(k) for k in ("threads", "n_gpu_layers", "batch_size", "ctx_min", "seed", "interval_s",
                                   "idle_timeout_s", "timeout_s") if k in c}
    samplers = ", ".join(f"{s.get('name')} every {s.get('interval_s')} s" if s.get("interval_s") else str(s.get("name"))
                         for s in manifest.get("samplers") or [])
    return [
        ("device", f"{show(device)} on {show(p.get('hostname'))} ({show(p.get('machine'))}, "
                   f"{show(p.get('cpu_count'))} cores, {mem / 1e9:.1f} GB RAM)" if mem else show(device)),
        ("profile", show(p.get("profile"))),
        ("L4T / CUDA", f"{show(p.get('l4t_release'))} / {show(p.get('cuda_version'))}"),
        ("power mode", show(board_setting(manifest, "nvpmodel") or p.get("power_mode"))),
        ("clocks (jetson_clocks)", show(board_setting(manifest, "jetson_clocks") if board_setting(
            manifest, "jetson_clocks") is not None else p.get("jetson_clocks"))),
        ("clocks measured", show(measured_clocks)),
        ("binary", f"{show(b.get('path'))} (llama.cpp {show(b.get('commit'))}, patch {show(b.get('patch_state'))}, "
                   f"sha256 {str(b.get('sha256') or '')[:12]})"),
        ("build flags", show(b.get("build_flags"))),
        ("run flags", show(flags)),
        ("model", f"{show(m.get('name'))}, {show(m.get('file_type_name'))}, {show(m.get('block_count'))} layers, "
                  f"{(m.get('size_bytes') or 0) / 1e6:.0f} MB, sha256 {str(m.get('sha256') or '')[:12]}"),
        ("workload", f"{show(w.get('path'))} ({len(w.get('queries') or [])} queries, "
                     f"sha256 {str(w.get('sha256') or '')[:12]})"),
        ("samplers", show(samplers)),
        ("edgebench", f"{show(manifest.get('edgebench_version'))}, run folder format "
                      f"{show(manifest.get('schema_version'))}, status {show(manifest.get('status'))}"),
    ]
