"""The report's statistics, computed from the raw records at render time (nothing upstream
pre-aggregates): per-category distributions with confidence intervals, repetitions' spread,
timing validation, TBT against token position, the KV cache from the GGUF metadata and the
memory-bandwidth roofline."""

from __future__ import annotations

import polars as pl

from orchestrator import fields as F
from orchestrator import stats
from orchestrator.experiments import index
from orchestrator.report.load import ROLE, board_setting
from orchestrator.store import MANIFEST_ENGINE
from orchestrator.workloads.schema import CATEGORIES

# Bytes per KV cache element: llama.cpp a33e6a0 keeps K and V in F16 unless told otherwise.
KV_BYTES_PER_ELEMENT = 2
# LPDDR4 of the Jetson Nano 4GB: 64-bit bus at 1600 MHz, two transfers a clock.
BANDWIDTH_GBS = {"jetson-nano": 25.6}

# (column, label, unit, scale to the unit). TBT is pooled over every token gap, not per query.
METRICS = [
    (F.TTFT_S, "TTFT (prompt echo to first token)", "ms", 1e3),
    (F.COLD_TTFT_S, "cold TTFT (spawn to first token, model load included)", "ms", 1e3),
    (F.TBT_S, "TBT (every token gap)", "ms", 1e3),
    (F.TPOT_S, "TPOT", "ms", 1e3),
    (F.TOTAL_S, "total time", "s", 1.0),
    (F.LOAD_S, "load time (spawn to prompt echo, apart from TTFT)", "s", 1.0),
    (F.DECODE_TOK_S, "decode speed", "tok/s", 1.0),
    (F.PREFILL_TOK_S, "prefill speed", "tok/s", 1.0),
    (F.PEAK_RSS_BYTES, "peak RSS", "MB", 1e-6),
    (F.CPU_MEAN_PCT, "CPU of the process (mean, summed over cores)", "%", 1.0),
    (F.CPU_LIFE_PCT_NORM, "CPU of the process over its life (the kernel's count, % of all cores)", "%", 1.0),
    (F.GPU_LOAD_PREFILL_MEAN_PCT, "GPU load during prefill (mean)", "%", 1.0),
    (F.GPU_LOAD_PREFILL_PEAK_PCT, "GPU load during prefill (peak)", "%", 1.0),
    (F.GPU_LOAD_DECODE_MEAN_PCT, "GPU load during decode (mean)", "%", 1.0),
    (F.GPU_LOAD_DECODE_PEAK_PCT, "GPU load during decode (peak)", "%", 1.0),
    (F.GPU_MEM_PEAK_BYTES, "GPU memory of the process, peak", "MB", 1e-6),
    (F.GPU_SHARED_MEM_PEAK_BYTES, "shared (NvMap) memory, peak", "MB", 1e-6),
    (F.ENERGY_J, "energy per query", "J", 1.0),
    (F.ENERGY_PER_TOKEN_J, "energy per output token", "mJ", 1e3),
    (F.ENERGY_NET_J, "energy per query net of idle power", "J", 1.0),
    (F.ENERGY_NET_PER_TOKEN_J, "energy per output token net of idle power", "mJ", 1e3),
    (F.ENERGY_COVERAGE, "share of the query spanned by power readings (below 90%: energy leans on held readings)",
     "%", 100.0),
    (F.TEMP_PEAK_C, "temperature peak", "°C", 1.0),
]


def category_order(categories) -> list[str]:
    present = [c for c in categories if c is not None]
    return [c for c in CATEGORIES if c in present] + sorted(set(present) - set(CATEGORIES))


def _stats(values: pl.Series, scale: float = 1.0) -> dict:
    """The statistics engine's description (orchestrator/stats.py) of a column's values, handed over
    sorted: describe sorts them again, and Python's sort of a sorted list is one linear pass where
    half a million unsorted token gaps took most of a second (its sums are exact, so order-free)."""
    return stats.describe(values.drop_nulls().sort().to_list(), scale)


def main_part(q: pl.DataFrame) -> pl.DataFrame:
    """The attempts the per-category statistics and figures describe: an experiment's
    `categories` part where it has one (its sweeps and pair must not skew them), else all."""
    if ROLE in q.columns and (q[ROLE] == index.CATEGORIES).any():
        return q.filter(pl.col(ROLE) == index.CATEGORIES)
    return q


def by_key(blocks: list[dict]) -> dict[tuple[str, str], dict]:
    """category_metrics' blocks as {(metric, category): row}, the row with the block's label and unit."""
    return {(b["key"], r[F.CATEGORY]): {**r, "label": b["label"], "unit": b["unit"]} for b in blocks for r in b["rows"]}


def engines_part(q: pl.DataFrame, tbt: pl.DataFrame) -> list[dict]:
    """An `experiment engines` folder: load_saved between its categories part (the first engine)
    and its part under the other engine; [] for any other folder."""
    if ROLE not in q.columns or not (q[ROLE] == index.OTHER_ENGINE).any():
        return []
    sides = []
    for role in (index.CATEGORIES, index.OTHER_ENGINE):
        part = q.filter(pl.col(ROLE) == role)
        blocks, _ = category_metrics(part, tbt.filter(pl.col(ROLE) == role))
        sides.append(by_key(blocks))
    return load_saved(*sides)


def category_metrics(q: pl.DataFrame, tbt: pl.DataFrame) -> tuple[list[dict], list[str]]:
    """One block per metric that has data; the labels of those that have none."""
    ok = q.filter(pl.col(F.STATUS) == "ok")
    cats = category_order(q[F.CATEGORY].unique().to_list())
    blocks, absent = [], []
    for col, label, unit, scale in METRICS:
        frame = tbt if col == F.TBT_S else ok
        if col not in frame.columns or frame[col].drop_nulls().is_empty():
            absent.append(label)
            continue
        rows = []
        for cat in cats:
            s = _stats(frame.filter(pl.col(F.CATEGORY) == cat)[col], scale)
            if s["n"]:
                rows.append({F.CATEGORY: cat, **s})
        rows.append({F.CATEGORY: "all", **_stats(frame[col], scale)})
        blocks.append({"key": col, "label": label, "unit": unit, "rows": rows})
    return blocks, absent


def recorded_elsewhere(absent: list[str], q: pl.DataFrame, tbt: pl.DataFrame) -> list[str]:
    """Of the metrics the statistics' part lacks, those another part of the folder recorded: an
    experiment's categories part at a coarse interval can miss a short phase its granular part caught,
    and "not recorded in this folder" would then be false."""
    ok = q.filter(pl.col(F.STATUS) == "ok")
    out = []
    for col, label, _unit, _scale in METRICS:
        frame = tbt if col == F.TBT_S else ok
        if label in absent and col in frame.columns and not frame[col].drop_nulls().is_empty():
            out.append(label)
    return out


def failures(q: pl.DataFrame) -> list[dict]:
    """Per category: attempts, ok, each failure status, validation flags and throttled queries."""
    rows = []
    for cat in category_order(q[F.CATEGORY].unique().to_list()) + ["all"]:
        sub = q if cat == "all" else q.filter(pl.col(F.CATEGORY) == cat)
        statuses = sub[F.STATUS].value_counts()
        by = {s: int(n) for s, n in zip(statuses[F.STATUS].to_list(), statuses["count"].to_list(), strict=True)}
        ok = sub.filter(pl.col(F.STATUS) == "ok")
        flagged = int((ok[F.VALIDATION_OK] == False).sum()) if F.VALIDATION_OK in ok.columns else 0  # noqa: E712
        throttled = int(sub[F.THROTTLED].fill_null(False).sum()) if F.THROTTLED in sub.columns else None
        low = int(sub[F.ENERGY_COVERAGE_LOW].fill_null(False).sum()) if F.ENERGY_COVERAGE_LOW in sub.columns else 0
        rows.append({F.CATEGORY: cat, "attempts": sub.height, "ok": by.pop("ok", 0), "failed": by,
                     "validation_flagged": flagged, F.THROTTLED: throttled, "energy_low": low})
    return rows


def repetition_spread(q: pl.DataFrame) -> list[dict]:
    """Per (query, variant) measured more than once: the spread of its repetitions."""
    if q.is_empty():
        return []
    # an experiment's parts may run the same query: a repetition is one of the same part's
    keys = [F.PART, F.QUERY_ID, F.VARIANT_ID]
    ok = q.filter(pl.col(F.STATUS) == "ok").with_columns(
        [(pl.col(k) if k in q.columns else pl.lit(None)).cast(pl.Utf8).fill_null("").alias(k) for k in keys])
    counts = ok.group_by(keys).len().filter(pl.col("len") > 1)
    rows = []
    for part, query_id, variant_id, _n in counts.sort(keys).iter_rows():
        sub = ok.filter((pl.col(F.PART) == part) & (pl.col(F.QUERY_ID) == query_id)
                        & (pl.col(F.VARIANT_ID) == variant_id))
        row = {F.PART: part, F.QUERY_ID: query_id, F.VARIANT_ID: variant_id, F.CATEGORY: sub[F.CATEGORY][0]}
        for col, scale in ((F.TTFT_S, 1e3), (F.TOTAL_S, 1.0), (F.DECODE_TOK_S, 1.0)):
            if col in sub.columns:
                s = _stats(sub[col], scale)
                if s["n"]:
                    s["cv_pct"] = 100 * s["std"] / s["mean"] if s["mean"] and s["std"] is not None else None
                row[col] = s
        rows.append(row)
    return rows


def validation(records: list[dict]) -> tuple[list[dict], list[dict]]:
    """Per category: how many ok queries were checked against llama.cpp's own timings, how many
    disagree, the worst errors; and every flagged query with the checks that failed."""
    per: dict[str, dict] = {}
    flagged = []
    for r in records:
        if r.get(F.STATUS) != "ok" or r.get(F.PHASE, "measure") != "measure":
            continue
        v = r.get(F.VALIDATION)
        row = per.setdefault(r.get(F.CATEGORY), {"checked": 0, "flagged": 0, "unchecked": 0,
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
            flagged.append({F.QUERY_ID: r.get(F.QUERY_ID), F.CATEGORY: r.get(F.CATEGORY), F.ATTEMPT: r.get(F.ATTEMPT),
                            "checks": bad})
    rows = [{F.CATEGORY: c, **per[c]} for c in category_order(per)]
    return rows, flagged


def tbt_by_position(tbt: pl.DataFrame) -> tuple[pl.DataFrame, list[dict]]:
    """Median TBT at each token position per category, and the least-squares slope of TBT on
    position: does decoding slow down as the KV cache grows?"""
    if tbt.is_empty():
        return tbt, []
    med = (tbt.group_by([F.CATEGORY, "position"]).agg(pl.col(F.TBT_S).median().alias(F.TBT_S), pl.len().alias("n"))
           .sort([F.CATEGORY, "position"]))
    trends = []
    for cat in category_order(tbt[F.CATEGORY].unique().to_list()):
        sub = tbt.filter(pl.col(F.CATEGORY) == cat)
        x, y = sub["position"].cast(pl.Float64), sub[F.TBT_S]
        if sub.height < 3 or float(x.var()) == 0:
            continue
        slope = float(((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum())
        top = int(x.max())
        quarter = max(1, top // 4)
        first = float(sub.filter(pl.col("position") <= quarter)[F.TBT_S].median())
        last = float(sub.filter(pl.col("position") > top - quarter)[F.TBT_S].median())
        trends.append({F.CATEGORY: cat, "gaps": sub.height, "max_position": int(x.max()),
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
        ctx = r.get(F.CTX_SIZE) or (r.get(F.LLAMA) or {}).get(F.CTX_SIZE)
        if ctx:
            by_ctx.setdefault(int(ctx), [])
            reported = (r.get(F.LLAMA) or {}).get("kv_self_mib")
            if reported is not None:
                by_ctx[int(ctx)].append(float(reported))
    rows = []
    for ctx in sorted(by_ctx):
        computed = 2 * ctx * n_kv * head_dim * n_layers * KV_BYTES_PER_ELEMENT
        reported = sorted(set(by_ctx[ctx]))
        rows.append({F.CTX_SIZE: ctx, "computed_mib": computed / 2**20, "reported_mib": reported,
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
    if not model_bytes or not bw or F.DECODE_TOK_S not in q.columns:
        return {"available": False, "bandwidth_gbs": bw, "model_bytes": model_bytes}
    ceiling = bw * 1e9 / model_bytes
    ok = q.filter(pl.col(F.STATUS) == "ok")
    rows = []
    for cat in category_order(ok[F.CATEGORY].unique().to_list()) + ["all"]:
        sub = ok if cat == "all" else ok.filter(pl.col(F.CATEGORY) == cat)
        v = sub[F.DECODE_TOK_S].drop_nulls()
        if not v.is_empty():
            med = float(v.median())
            rows.append({F.CATEGORY: cat, "decode_tok_s_p50": med, "fraction": med / ceiling})
    return {"available": bool(rows), "bandwidth_gbs": bw, "bandwidth_source": why, "model_bytes": model_bytes,
            "ceiling_tok_s": ceiling, "rows": rows}


def clocks(samples: pl.DataFrame) -> str | None:
    """Median and range of the clocks the GPU sampler read during the queries, where it read them."""
    parts = []
    for col, name in ((F.GPU_FREQ_MHZ, "GPU"), (F.EMC_FREQ_MHZ, "memory (EMC)"), ("cpu_freq_mhz", "CPU")):
        if col in samples.columns and not samples[col].drop_nulls().is_empty():
            v = samples[col].drop_nulls()
            parts.append(f"{name} {float(v.median()):.0f} MHz median ({float(v.min()):.0f}-{float(v.max()):.0f})")
    return ", ".join(parts) or None


def load_saved(ba: dict, bb: dict) -> list[dict]:
    """Two runs' category blocks (`{(metric, category): row}`, as category_metrics gives them), per
    category: the model load each query pays under each run (load_s: spawn to prompt echo;
    none for a resident server) and the cold TTFT an agent waits for (spawn, or request, to first
    token); `saved` is A's cold TTFT minus B's."""
    scale = {key: s for key, _, _, s in METRICS}  # the blocks hold each metric in its display unit

    def seconds(blocks, key, cat):
        p50 = (blocks.get((key, cat)) or {}).get("p50")
        return None if p50 is None else p50 / scale[key]

    cats = category_order({c for (k, c) in list(ba) + list(bb) if k == F.COLD_TTFT_S and c != "all"})
    rows = []
    for cat in [*cats, "all"]:
        cold_a, cold_b = seconds(ba, F.COLD_TTFT_S, cat), seconds(bb, F.COLD_TTFT_S, cat)
        if cold_a is None or cold_b is None:
            continue
        rows.append({F.CATEGORY: cat, "load_a": seconds(ba, F.LOAD_S, cat), "load_b": seconds(bb, F.LOAD_S, cat),
                     "cold_a": cold_a, "cold_b": cold_b, "saved": cold_a - cold_b})
    return rows


def _engine_line(engine: dict) -> str:
    """A folder written before engines were named ran `main`, one process per query."""
    if not engine:
        return "main (one process per query)"
    line = f"{engine.get('name')} ({engine.get('title') or engine.get('name')})"
    if engine.get("server_load_s") is not None:
        line += f"; model loaded once in {engine['server_load_s']:.2f} s"
    return line


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
                         for s in manifest.get(F.SAMPLERS) or [])
    return [
        ("device", f"{show(device)} on {show(p.get('hostname'))} ({show(p.get('machine'))}, "
                   f"{show(p.get('cpu_count'))} cores, {mem / 1e9:.1f} GB RAM)" if mem else show(device)),
        ("profile", show(p.get("profile"))),
        ("L4T / CUDA", f"{show(p.get('l4t_release'))} / {show(p.get('cuda_version'))}"),
        ("power mode", show(board_setting(manifest, "nvpmodel"))),
        ("clocks (jetson_clocks)", show(board_setting(manifest, "jetson_clocks"))),
        ("clocks measured", show(measured_clocks)),
        (MANIFEST_ENGINE, _engine_line(manifest.get(MANIFEST_ENGINE) or {})),
        ("binary", f"{show(b.get('path'))} (llama.cpp {show(b.get('commit'))}, patch {show(b.get('patch_state'))}, "
                   f"sha256 {str(b.get('sha256') or '')[:12]})"),
        ("build flags", show(b.get("build_flags"))),
        ("run flags", show(flags)),
        ("model", f"{show(m.get('name'))}, {show(m.get('file_type_name'))}, {show(m.get('block_count'))} layers, "
                  f"{(m.get('size_bytes') or 0) / 1e6:.0f} MB, sha256 {str(m.get('sha256') or '')[:12]}"),
        ("workload", f"{show(w.get('path'))} ({len(w.get('queries') or [])} queries, "
                     f"sha256 {str(w.get('sha256') or '')[:12]})"),
        (F.SAMPLERS, show(samplers)),
        ("edgebench", f"{show(manifest.get('edgebench_version'))}, run folder format "
                      f"{show(manifest.get('schema_version'))}, status {show(manifest.get('status'))}"),
    ]
