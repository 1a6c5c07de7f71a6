"""Prompt token counts with llama.cpp's `tokenize` binary (it loads the vocabulary only).

The count is what `main` feeds the model: BOS included, special tokens parsed (both binaries
call `llama_tokenize(..., add_bos, special=true)`). The prompt is one argv item, never a
shell word."""

from __future__ import annotations

import os
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from orchestrator import paths
from orchestrator.errors import UserError


def default_tokenizer() -> Path:
    return paths.build_dir() / "llama.cpp" / "tokenize"


def default_vocab() -> Path:
    """The vocabulary bootstrap left (twin route), else the bootstrapped model itself:
    `tokenize` reads only the vocabulary of whatever GGUF it is given."""
    vocab = paths.build_dir() / "models" / "ggml-vocab-llama.gguf"
    if vocab.is_file():
        return vocab
    from orchestrator.bootstrap.ledger import Ledger

    model = Ledger(paths.ledger_path()).get("model")
    return Path(model["path"]) if model else vocab


def check_tools(tokenizer: Path, vocab: Path) -> None:
    for what, path in (("llama.cpp tokenize binary", tokenizer), ("vocabulary", vocab)):
        if not Path(path).is_file():
            raise UserError(
                f"{what} not found at {path} (needed to count prompt tokens)",
                fix="make bootstrap, or pass --tokenizer/--vocab, or --no-count to skip counting",
            )


def _scratch() -> str:
    """llama.cpp's examples write main.log into their working directory: keep it out of the user's."""
    d = Path(tempfile.gettempdir()) / "edgebench-tokenize"
    d.mkdir(exist_ok=True)
    return str(d)


def count_tokens(prompt: str, tokenizer: Path, vocab: Path, timeout_s: float = 60) -> int:
    """Tokens `main` would see for this prompt, BOS included."""
    from orchestrator.engine.argv import exec_bytes

    if "\x00" in prompt:
        raise ValueError("a prompt with a NUL character cannot be passed as an argument")
    try:
        proc = subprocess.run(
            exec_bytes(_argv(tokenizer, vocab, prompt)),
            check=False,
            cwd=_scratch(),
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout_s,
        )
    except OSError as exc:
        raise UserError(f"cannot run {tokenizer}: {exc.strerror}", fix="make bootstrap") from None
    except subprocess.TimeoutExpired:
        raise UserError(
            f"{tokenizer} did not finish within {timeout_s} s", fix="make bootstrap"
        ) from None
    ids = _ids(proc.stdout)
    if proc.returncode != 0 or not ids:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise UserError(
            f"{tokenizer} failed (exit {proc.returncode}) on a prompt of {len(prompt)} "
            f"characters: {' | '.join(tail)}",
            fix="make bootstrap (rebuilds llama.cpp)",
        )
    return len(ids)


def _argv(tokenizer: Path, vocab: Path, prompt: str) -> list[str]:
    if Path(tokenizer).name == "llama-tokenize":  # today's llama.cpp: options, not positions
        return [str(tokenizer), "-m", str(vocab), "-p", prompt, "--no-escape", "--ids", "--log-disable"]
    return [str(tokenizer), str(vocab), prompt, "--ids"]


def _ids(stdout: str) -> list[str]:
    """a33e6a0's `tokenize --ids` prints one id a line; today's `llama-tokenize --ids` one list, `[1, 2]`."""
    lines = stdout.strip().splitlines()
    if len(lines) == 1 and lines[0].startswith("[") and lines[0].endswith("]"):
        return [x for x in lines[0][1:-1].replace(" ", "").split(",") if x.lstrip("-").isdigit()]
    return [line for line in lines if line.strip().lstrip("-").isdigit()]


def count_many(
    prompts: list[str], tokenizer: Path, vocab: Path, jobs: int | None = None
) -> list[int]:
    """Counts in input order; one process per prompt (~50 ms each), several at a time."""
    jobs = jobs or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(lambda p: count_tokens(p, tokenizer, vocab), prompts))
