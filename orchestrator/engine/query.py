"""One query, end to end: size the context, spawn `main`, stream, read llama.cpp's logs, and
return the record (plus the sampler series) for the store."""

from __future__ import annotations

import errno
import json
import resource
import shutil
from pathlib import Path

from orchestrator import fields as F
from orchestrator.config import RunConfig
from orchestrator.engine import llamalog, metrics
from orchestrator.engine.argv import build_argv, ctx_size_for
from orchestrator.engine.child import run_child


def _cpu_self_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


# Below this much free space after the child exited, its own writes (main.log, stderr.log, the
# -ld YAML) may have met a full disk and been cut short, and ours (stream files, record, samples)
# would: the attempt is not recorded (a cut YAML would read as a failed or a wrong query) and the
# disk-full error stops the run instead. Beside it, the stream files this attempt will write.
AFTER_QUERY_MIN_FREE_BYTES = 64 * 1024


def _check_child_had_room(raw_dir: Path, child) -> None:
    from orchestrator.diskspace import free_bytes

    ours = sum(len(b) + 32 for _, b in child.chunks)  # stream.bin, and a [t, n] pair each in stream.json
    if free_bytes(raw_dir) < AFTER_QUERY_MIN_FREE_BYTES + ours:
        raise OSError(errno.ENOSPC, "No space left on device (the disk filled while main ran)", str(raw_dir))


def failed(query, attempt: str, status: str, error: str, **extra) -> dict:
    return {F.QUERY_ID: query.id, F.CATEGORY: query.category, F.ATTEMPT: attempt, F.STATUS: status, F.ERROR: error,
            F.MAX_TOKENS: query.max_tokens, **extra}


def run_query(cfg: RunConfig, query, attempt: str, raw_dir: Path, pieces: list[bytes], n_ctx_train: int | None,
              prompt_tokens: int, ignore_eos: bool, samplers: list, executor=run_child,
              idle_power_mw: float | None = None) -> tuple[dict, dict]:
    """Returns (record, samples by sampler name). Never raises for a query that goes wrong:
    that is recorded with its status and the run goes on. `executor` has run_child's signature
    (tests hand in a fake `main` that answers in microseconds). `idle_power_mw`, the board's idle
    power measured before the run's first query, lets the GPU samplers give energy net of it."""
    ctx_size = ctx_size_for(prompt_tokens, query.max_tokens, cfg.ctx_min)
    if n_ctx_train and ctx_size > n_ctx_train:
        return failed(query, attempt, "too_long",
                      f"prompt of {prompt_tokens} tokens + {query.max_tokens} output tokens needs a context of "
                      f"{ctx_size}, more than the model's {n_ctx_train}: shorten the prompt or lower max_tokens",
                      prompt_tokens_est=prompt_tokens), {}
    log_dir = raw_dir / "ld"
    shutil.rmtree(log_dir, ignore_errors=True)  # what an interrupted attempt left must not be read as ours
    log_dir.mkdir(parents=True)
    stderr_path = raw_dir / "stderr.log"
    argv = build_argv(cfg, query.prompt, query.max_tokens, ctx_size, log_dir, ignore_eos)
    cpu0 = _cpu_self_s()
    child = executor(argv, raw_dir, stderr_path, samplers, cfg.idle_timeout_s, cfg.timeout_s)
    harness_cpu_s = _cpu_self_s() - cpu0
    _check_child_had_room(raw_dir, child)

    yaml_path = llamalog.find_yaml(log_dir)
    y = llamalog.parse_yaml(yaml_path) if yaml_path else {}
    if yaml_path:
        shutil.move(str(yaml_path), raw_dir / "llama.yml")
    shutil.rmtree(log_dir, ignore_errors=True)
    stderr_text = llamalog.tail(stderr_path, 200_000)
    llama = {k: y[k] for k in llamalog.TIMING_KEYS if k in y}
    llama.update(llamalog.parse_stderr(stderr_text))
    ids = y.get(F.OUTPUT_TOKENS) or []
    ok_ids = [i for i in ids if isinstance(i, int) and 0 <= i < len(pieces)]
    out_pieces = [pieces[i] for i in ok_ids]
    attributed = metrics.attribute(child.chunks, out_pieces) if child.chunks else {"matched": False, "t_echo_ns": None,
                                                                                     "t_tok_ns": []}
    prompt_ids = y.get(F.PROMPT_TOKENS)
    n_prompt = len(prompt_ids) if isinstance(prompt_ids, list) else None
    fig = metrics.stream_figures(child.t_spawn_ns, attributed["t_echo_ns"], attributed["t_tok_ns"], child.t_exit_ns,
                                 n_prompt)
    output_text = b"".join(out_pieces).decode("utf-8", "replace")
    record = {
        F.QUERY_ID: query.id,
        F.CATEGORY: query.category,
        F.ATTEMPT: attempt,
        F.STATUS: child.status,
        F.EXIT_CODE: child.exit_code,
        F.SIGNAL: child.signal,
        F.ERROR: child.error,
        F.MAX_TOKENS: query.max_tokens,
        F.PROMPT_TOKENS_EST: prompt_tokens,
        F.PROMPT_TOKENS: n_prompt,
        F.CTX_SIZE: ctx_size,
        F.IGNORE_EOS: ignore_eos,
        **fig,
        F.LLAMA: llama,
        # a process sampler's aggregate raises this to the larger of kernel and samples
        F.PEAK_RSS_BYTES: child.peak_rss_bytes,
        F.PEAK_RSS_KERNEL_BYTES: child.peak_rss_bytes,
        F.MAIN_CPU_S: child.cpu_s,
        F.HARNESS_CPU_S: harness_cpu_s,
        F.SAMPLERS: [smp.name for smp in samplers],
        F.RAW_DIR: raw_dir.name,
        F.OUTPUT_TEXT: output_text,
    }
    timeline = {"t_echo_s": fig.get(F.T_ECHO_S), "t_first_token_s": (fig.get(F.T_TOK_S) or [None])[0],
                "t_last_token_s": (fig.get(F.T_TOK_S) or [None])[-1], "t_exit_s": fig[F.TOTAL_S],
                "output_tokens": fig[F.OUTPUT_TOKENS], "kernel_peak_rss_bytes": child.peak_rss_bytes,
                "n_gpu_layers": cfg.n_gpu_layers, F.IDLE_POWER_MW: idle_power_mw}
    for smp in samplers:
        record.update(smp.aggregate(child.samples.get(smp.name, []), timeline))
    if child.status == "ok" and not y:
        record.update(status="error", error="main exited 0 but wrote no -ld YAML file")
    if child.status != "ok" or record[F.STATUS] != "ok":
        record[F.STDERR_TAIL] = stderr_text[-2000:]
    if child.status == "ok" and y:
        record[F.VALIDATION] = metrics.validate(fig, llama, len(ids), attributed)
    if llama.get("cuda_arch_mismatch"):
        record[F.ERROR] = ("the CUDA kernels were not built for this GPU's architecture (\"no kernel image is "
                           "available\"): edgebench bootstrap --force build")
    # the raw stdout bytes: the prompt echo then the tokens, as the binary wrote them
    (raw_dir / "stream.bin").write_bytes(b"".join(b for _, b in child.chunks))
    with open(raw_dir / "stream.json", "w") as f:
        json.dump({"t_spawn_ns": child.t_spawn_ns, "argv": argv,
                   "chunks": [[t - child.t_spawn_ns, len(b)] for t, b in child.chunks]}, f)
    return record, child.samples
