"""A fake llama.cpp `main` at the executor seam (hyperfine's mock executor): it answers like
`main` does (prompt echo then one chunk per token, an `-ld` YAML, the stderr log lines) in
microseconds, so session, resume, variant, lock and exit-code tests need no llama.cpp.

Timestamps are synthetic (no time passes): load 50 ms, prefill 1 ms per prompt token, 20 ms per
generated token, so the figures a test reads back are known exactly. A prompt containing CRASH
dies by SIGSEGV, HANG idles out, EXIT3 exits with status 3. `FakeMain(eos_after=K)` is a model that
ends its answer after K tokens unless argv has --ignore-eos, as a real model stops at EOS.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from waiting import wait_for

from orchestrator.engine.child import ChildResult
from orchestrator.sampling.polling import PollingSampler

N_WORDS = 200
FIRST_WORD = 3  # ids 0..2 are <unk>, <s>, </s>
LOAD_S, PREFILL_PER_TOKEN_S, TOKEN_S = 0.050, 0.001, 0.020


def write_vocab_model(path: Path, context_length: int = 2048) -> Path:
    """A GGUF with the llama architecture keys and an SPM vocabulary of N_WORDS words, and no
    tensors: enough for edgebench to read what it needs (figures, vocabulary) before any query."""
    from orchestrator.report.replay import write_vocab_model as write

    figures = {"context_length": context_length, "block_count": 1, "embedding_length": 64, "head_count": 4,
               "head_count_kv": 4}
    return write(path, figures, words=N_WORDS, file_type=None)


def fake_binary(path: Path) -> Path:
    """An executable that stands where `main` would; the fake executor never runs it."""
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def _arg(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def _first_reading_in(sampler) -> bool:
    if not isinstance(sampler, PollingSampler):
        return True  # a pushed or null sampler reads at its source's pace, or never
    thread = sampler._thread  # noqa: SLF001 - the fake's view of the sampler it stands beside
    return bool(sampler._samples) or thread is None or not thread.is_alive()  # noqa: SLF001


class FakeMain:
    """Has run_child's signature. `calls` records each argv; `on_call(argv)` runs first (a test
    raises from it to simulate an interruption)."""

    def __init__(self, on_call=None, eos_after: int | None = None):
        self.calls: list[list[str]] = []
        self.on_call = on_call
        self.eos_after = eos_after

    def __call__(self, argv, cwd, stderr_path, samplers, idle_timeout_s, timeout_s) -> ChildResult:
        self.calls.append(list(argv))
        if self.on_call:
            self.on_call(argv)
        prompt, n = _arg(argv, "-p"), int(_arg(argv, "-n"))
        if self.eos_after is not None and "--ignore-eos" not in argv:
            n = min(n, self.eos_after)
        t0 = time.perf_counter_ns()
        res = ChildResult(t_spawn_ns=t0)
        for s in samplers:
            s.start(os.getpid(), t0)
        # A polling thread's first reading (of this process) is in before the query ends: waited for,
        # since a loaded machine may not schedule the thread within any fixed sleep.
        wait_for(lambda: all(_first_reading_in(s) for s in samplers))
        for s in samplers:
            res.samples[s.name] = s.stop()
        Path(stderr_path).write_text("llama_new_context_with_model: KV self size  =   11.00 MiB\n")
        prompt_ids = [1] + [FIRST_WORD + (len(w) % N_WORDS) for w in prompt.split()]
        out_ids = [FIRST_WORD + (i * 7) % N_WORDS for i in range(n)]
        t_echo = t0 + int(LOAD_S * 1e9)
        prefill_ns = int(PREFILL_PER_TOKEN_S * len(prompt_ids) * 1e9)
        res.chunks.append((t_echo, (" " + prompt).encode()))
        if "HANG" in prompt:
            res.status, res.t_exit_ns = "idle_timeout", t_echo + int(idle_timeout_s * 1e9)
            res.error, res.signal = f"printed nothing for {idle_timeout_s:g} s (--idle-timeout); killed", 9
            return res
        if "CRASH" in prompt:
            res.status, res.signal, res.t_exit_ns = "crashed", signal.SIGSEGV, t_echo + 1000
            res.error = "killed by signal 11 (SIGSEGV)"
            return res
        for i, tid in enumerate(out_ids):
            res.chunks.append((t_echo + prefill_ns + int(i * TOKEN_S * 1e9), f" w{tid - FIRST_WORD}".encode()))
        res.t_exit_ns = res.chunks[-1][0] + 1_000_000
        res.peak_rss_bytes, res.cpu_s = 50_000_000, 0.01
        if "EXIT3" in prompt:
            res.status, res.exit_code, res.error = "error", 3, "exited with status 3"
            return res
        res.exit_code = 0
        ld = Path(_arg(argv, "-ld"))
        ld.mkdir(parents=True, exist_ok=True)
        (ld / "main-fake.yml").write_text(
            f"prompt_tokens: {prompt_ids}\noutput_tokens: {out_ids}\nn_p_eval: {len(prompt_ids)}\n"
            f"n_eval: {n - 1}\nn_sample: {n}\nt_p_eval_us: {prefill_ns // 1000}\n"
            f"t_eval_us: {int(TOKEN_S * 1e6) * (n - 1)}\nt_sample_us: 0\nn_gpu_layers: 0\n")
        return res
