"""The argv for one query. A list handed to exec, never a shell string: prompts carry quotes,
`$(...)` and newlines that a shell would act on."""

from __future__ import annotations

from pathlib import Path

from orchestrator.config import RunConfig

CTX_STEP = 64


def exec_bytes(argv: list[str]) -> list[bytes]:
    """argv as the bytes a llama.cpp program reads: UTF-8, whatever the locale. A str argv is
    encoded with the locale's codec, which under LANG=C (without Python's UTF-8 mode) is ASCII
    and refuses every non-ASCII prompt. A path the C locale decoded with surrogateescape gets its
    original bytes back."""
    return [a.encode("utf-8", "surrogateescape") for a in argv]


def ctx_size_for(prompt_tokens: int, max_tokens: int, ctx_min: int) -> int:
    """Room for the prompt, every output token and a little slack, in whole steps."""
    need = prompt_tokens + max_tokens + 8
    return max(ctx_min, -(-need // CTX_STEP) * CTX_STEP)


def build_argv(cfg: RunConfig, prompt: str, max_tokens: int, ctx_size: int, log_dir: Path,
               ignore_eos: bool) -> list[str]:
    return llama_argv(cfg, prompt, max_tokens, ctx_size, ignore_eos, ["-ld", str(log_dir)])


def llama_argv(cfg: RunConfig, prompt: str, max_tokens: int, ctx_size: int, ignore_eos: bool,
               own: list[str]) -> list[str]:
    """The options every llama.cpp program here takes alike, with the program's `own` after them."""
    argv = [
        str(cfg.binary),
        "-m", str(cfg.model),
        "-p", prompt,
        "-n", str(max_tokens),
        "-c", str(ctx_size),
        "-s", str(cfg.seed),
        "-t", str(cfg.threads),
        *own,
    ]
    if cfg.batch_size:
        argv += ["-b", str(cfg.batch_size)]
    if cfg.n_gpu_layers is not None:
        argv += ["-ngl", str(cfg.n_gpu_layers)]
    if ignore_eos:
        argv.append("--ignore-eos")
    return argv
