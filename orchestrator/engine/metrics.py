"""From timestamped chunks to the measured figures (docs/measurement.md),
and the cross-check of each against llama.cpp's own timings."""

from __future__ import annotations

import bisect
import itertools
import statistics

from orchestrator import fields as F

# A stream figure agrees with llama.cpp's when within max(REL_TOL * expected, ABS_TOL_S).
REL_TOL = 0.05
PREFILL_ABS_TOL_S = 0.010
TBT_ABS_TOL_S = 0.001


def attribute(chunks: list[tuple[int, bytes]], pieces: list[bytes]) -> dict:
    """Split the stream into the prompt echo and the generated tokens, by bytes.

    `pieces` are the bytes `main` printed for each output token (from the YAML's token ids and
    the model's vocabulary), so a multi-byte character split over chunks, or two tokens read as
    one chunk, are attributed exactly. Returns t_echo_ns, t_tok_ns (one per token), and flags."""
    stream = b"".join(b for _, b in chunks)
    out = b"".join(pieces)
    ends, total = [], 0
    for _, b in chunks:
        total += len(b)
        ends.append(total)
    result = {"stream_bytes": len(stream), "output_bytes": len(out), "empty_pieces": sum(1 for p in pieces if not p)}
    if not stream.endswith(out) or len(stream) == len(out):
        result.update(matched=False, t_echo_ns=chunks[0][0] if chunks else None, t_tok_ns=[t for t, _ in chunks[1:]])
        return result
    echo_len = len(stream) - len(out)
    t_tok, offset = [], echo_len
    for piece in pieces:
        offset += len(piece)
        # the chunk that carried this token's last byte (an empty piece: the previous token's)
        idx = bisect.bisect_left(ends, max(offset, echo_len))
        t_tok.append(chunks[min(idx, len(chunks) - 1)][0])
    result.update(matched=True, echo_bytes=echo_len, t_echo_ns=chunks[0][0], t_tok_ns=t_tok)
    return result


def stream_figures(t_spawn_ns: int, t_echo_ns: int | None, t_tok_ns: list[int], t_exit_ns: int,
                   prompt_tokens: int | None) -> dict:
    s = 1e-9
    fig: dict = {F.TOTAL_S: (t_exit_ns - t_spawn_ns) * s, F.OUTPUT_TOKENS: len(t_tok_ns)}
    if t_echo_ns is None:
        return fig
    fig[F.T_ECHO_S] = (t_echo_ns - t_spawn_ns) * s
    fig[F.LOAD_S] = fig[F.T_ECHO_S]
    fig[F.T_TOK_S] = [(t - t_spawn_ns) * s for t in t_tok_ns]
    if not t_tok_ns:
        return fig
    fig[F.TTFT_S] = (t_tok_ns[0] - t_echo_ns) * s
    fig[F.COLD_TTFT_S] = (t_tok_ns[0] - t_spawn_ns) * s
    fig[F.TBT_S] = [(b - a) * s for a, b in itertools.pairwise(t_tok_ns)]
    if len(t_tok_ns) > 1:
        fig[F.TPOT_S] = (t_tok_ns[-1] - t_tok_ns[0]) * s / (len(t_tok_ns) - 1)
        fig[F.DECODE_TOK_S] = 1 / fig[F.TPOT_S] if fig[F.TPOT_S] > 0 else None
    if prompt_tokens and fig[F.TTFT_S] > 0:
        fig[F.PREFILL_TOK_S] = prompt_tokens / fig[F.TTFT_S]
    return fig


def _check(stream: float, expected: float, abs_tol: float) -> dict:
    tol = max(REL_TOL * expected, abs_tol)
    return {"stream": stream, "llama": expected, "diff": stream - expected, "tol": tol,
            "ok": abs(stream - expected) <= tol}


def validate(fig: dict, llama: dict, n_output_ids: int, attributed: dict) -> dict:
    """Each stream-derived figure against llama.cpp's own account; disagreement is flagged.

    The YAML's `output` text is not compared: llama.cpp writes it unquoted and with raw bytes
    of split characters, so it is not reliably parseable; the byte-exact match of the stream
    against the output token ids (`stream_matches_output`) is the stronger check."""
    checks: dict = {}
    n_eval, n_sample = llama.get("n_eval"), llama.get("n_sample") or 0
    if n_eval is not None:
        ok = fig[F.OUTPUT_TOKENS] == n_output_ids == n_eval + 1
        checks["token_count"] = {"stream": fig[F.OUTPUT_TOKENS], "yaml_output_tokens": n_output_ids,
                                 "llama_n_eval_plus_1": n_eval + 1, "ok": ok}
    checks["stream_matches_output"] = {"ok": bool(attributed.get("matched"))}
    sample_each_us = (llama.get("t_sample_us") or 0) / n_sample if n_sample else 0.0
    if F.TTFT_S in fig and llama.get("t_p_eval_us") is not None:
        # TTFT = prompt processing + sampling the first token (+ printing it)
        checks["prefill"] = _check(fig[F.TTFT_S], (llama["t_p_eval_us"] + sample_each_us) / 1e6, PREFILL_ABS_TOL_S)
    if fig.get(F.TBT_S) and n_eval:
        expected = (llama["t_eval_us"] + sample_each_us * (n_sample - 1)) / n_eval / 1e6
        checks["tbt_mean"] = _check(statistics.fmean(fig[F.TBT_S]), expected, TBT_ABS_TOL_S)
    errors = {}
    if fig.get(F.TBT_S) and n_eval and llama.get("t_eval_us"):
        per_eval = llama["t_eval_us"] / n_eval / 1e6
        errors["tbt_mean_rel_err"] = abs(statistics.fmean(fig[F.TBT_S]) - per_eval) / per_eval
    if F.TTFT_S in fig and llama.get("t_p_eval_us") is not None:
        errors["prefill_abs_err_ms"] = abs(fig[F.TTFT_S] - llama["t_p_eval_us"] / 1e6) * 1000
    return {"ok": all(c["ok"] for c in checks.values()), "checks": checks, **errors}
