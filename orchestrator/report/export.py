"""Per-query data beside the HTML, as CSV and Parquet, with a fixed, documented set of columns
(docs/report-columns.md is generated from COLUMNS, and a test keeps the two in step)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

# (column, type, meaning). Units are in the names; a column absent from a run is written empty.
COLUMNS = [
    ("run_id", "str", "the run folder the attempt belongs to"),
    ("part", "str", "the experiment part (empty for a plain run)"),
    ("experiment", "str", "the experiment's name (empty for a plain run)"),
    ("query_id", "str", "the workload query's id"),
    ("category", "str", "simple, complex, conversational, task-oriented or contextual"),
    ("attempt", "str", "the attempt's unique id (samples.jsonl rows carry it too)"),
    ("phase", "str", "warmup or measure; statistics use measure only"),
    ("repetition", "int", "0-based repetition within its phase"),
    ("variant_id", "str", "per-query overrides, e.g. max_tokens=10 (empty for none)"),
    ("status", "str", "ok, error, crashed, idle_timeout, timeout, spawn_error or too_long"),
    ("exit_code", "int", "main's exit status (empty when killed by a signal)"),
    ("signal", "int", "the signal that ended main, if any"),
    ("error", "str", "why the attempt failed (empty when ok)"),
    ("max_tokens", "int", "output-token limit passed to main (-n)"),
    ("prompt_tokens", "int", "prompt tokens llama.cpp evaluated (from its YAML log)"),
    ("prompt_tokens_est", "int", "the workload's prompt token count, used to size the context"),
    ("ctx_size", "int", "context size passed to main (-c)"),
    ("output_tokens", "int", "generated tokens seen in the stream"),
    ("load_s", "float", "spawn to the prompt echo: process start, model load, context set-up"),
    ("ttft_s", "float", "prompt echo to the first generated token: prefill plus the first sample"),
    ("cold_ttft_s", "float", "spawn to the first generated token"),
    ("tbt_mean_s", "float", "mean gap between consecutive generated tokens"),
    ("tpot_s", "float", "(last token - first token) / (output tokens - 1)"),
    ("total_s", "float", "spawn to exit"),
    ("decode_tok_s", "float", "1 / tpot_s"),
    ("prefill_tok_s", "float", "prompt_tokens / ttft_s"),
    ("peak_rss_bytes", "int", "peak resident memory of main (kernel high-water mark or highest sample)"),
    ("main_cpu_s", "float", "CPU time main used (user + system)"),
    ("harness_cpu_s", "float", "CPU time the measuring process used during the attempt"),
    ("validation_ok", "bool", "every stream figure agrees with llama.cpp's own timings"),
    ("llama_kv_self_mib", "float", "KV cache size main reported"),
    ("llama_n_gpu_layers", "int", "layers offloaded to the GPU, as main logged them"),
    ("llama_t_p_eval_us", "float", "llama.cpp's prompt evaluation time"),
    ("llama_t_eval_us", "float", "llama.cpp's generation time"),
    ("llama_n_eval", "int", "tokens llama.cpp evaluated after the prompt"),
    ("gpu_load_prefill_mean_pct", "float", "mean GPU load between prompt echo and first token"),
    ("gpu_load_decode_mean_pct", "float", "mean GPU load between first and last token"),
    ("gpu_load_peak_pct", "float", "highest GPU load reading of the attempt"),
    ("gpu_mem_peak_bytes", "int", "highest GPU memory reading of main"),
    ("shared_mem_peak_bytes", "int", "highest shared (NvMap) memory reading"),
    ("energy_j", "float", "energy of the attempt from the board's power rails"),
    ("energy_per_token_j", "float", "energy_j / output_tokens"),
    ("temp_peak_c", "float", "hottest temperature reading of the attempt"),
    ("throttled", "bool", "the board throttled its clocks during the attempt"),
    ("output_text", "str", "the generated text, as decoded from the output token ids"),
]
_TYPES = {"str": pl.Utf8, "int": pl.Int64, "float": pl.Float64, "bool": pl.Boolean}


def per_query(src) -> pl.DataFrame:
    from orchestrator.report.load import flat_record

    run_id = src.manifest.get("run_id")
    rows = []
    for r in src.records:
        flat = flat_record(r)
        flat.update(run_id=r.get("run_id") or run_id, output_text=r.get("output_text"))
        rows.append(flat)
    cols = {}
    for name, kind, _ in COLUMNS:
        values = [row.get(name) for row in rows]
        if kind == "int":
            values = [None if v is None else int(v) for v in values]
        elif kind == "float":
            values = [None if v is None else float(v) for v in values]
        elif kind == "str":
            values = [None if v is None else str(v) for v in values]
        elif kind == "bool":
            values = [None if v is None else bool(v) for v in values]
        cols[name] = pl.Series(name, values, dtype=_TYPES[kind])
    return pl.DataFrame(cols, height=len(rows))


def write(src, out_dir: Path) -> list[Path]:
    df = per_query(src)
    paths = [Path(out_dir) / "queries.csv", Path(out_dir) / "queries.parquet"]
    for path in paths:
        tmp = path.with_name(path.name + ".partial")
        if path.suffix == ".csv":
            df.write_csv(tmp)
        else:
            df.write_parquet(tmp)
        tmp.replace(path)
    return paths


def columns_markdown() -> str:
    lines = ["# Report columns", "",
             "`edgebench report` writes `queries.csv` and `queries.parquet` beside `report.html`: one row per",
             "finished query attempt (warm-up attempts included, with `phase` = warmup). Units are in the names.",
             "Empty cells are figures the run did not record (a failed query, no GPU sampler).", "",
             "| column | type | meaning |", "|---|---|---|"]
    lines += [f"| `{name}` | {kind} | {meaning} |" for name, kind, meaning in COLUMNS]
    return "\n".join(lines) + "\n"
