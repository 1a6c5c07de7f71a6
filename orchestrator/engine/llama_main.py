"""llama.cpp a33e6a0 `main`, one process per query (engine/base.py's first engine): size the
context, build the argv, spawn `main` on a pty in the scratch folder the store handed out, read
its `-ld` YAML and stderr, attribute the streamed bytes to tokens, and return the measured fields
and the raw files to keep."""

from __future__ import annotations

import errno
import json
import resource
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator import fields as F
from orchestrator import store
from orchestrator.engine import llamalog, metrics
from orchestrator.engine.argv import build_argv, ctx_size_for
from orchestrator.engine.base import Engine, Invocation, Outcome

# Below this much free space after the child exited, its own writes (main.log, stderr.log, the
# -ld YAML) may have met a full disk and been cut short, and ours (stream files, record, samples)
# would: the attempt is not recorded (a cut YAML would read as a failed or a wrong query) and the
# disk-full error stops the run instead. Beside it, the stream files this attempt will write.
AFTER_QUERY_MIN_FREE_BYTES = 64 * 1024
LOG_DIR = "ld"  # main's -ld folder inside its working folder; its YAML is kept, the folder is not


def _cpu_self_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class LlamaMain(Engine):
    name = "main"
    title = "llama.cpp a33e6a0 main, one process per query"

    def __init__(self, pieces: list[bytes], n_ctx_train: int | None, ignore_eos: bool, executor=None):
        """`pieces`: the bytes main prints for each token id (engine/vocab.py); `executor` has
        engine/child.run_child's signature (tests hand in a fake `main` that answers in microseconds)."""
        self.pieces, self.n_ctx_train, self.ignore_eos, self.executor = pieces, n_ctx_train, ignore_eos, executor

    @classmethod
    def create(cls, cfg, prep, executor=None) -> LlamaMain:
        return cls(prep.pieces, prep.n_ctx_train, prep.ignore_eos, executor)

    # -- the argv, once ------------------------------------------------------------------
    def invocation(self, cfg, query, prompt_tokens: int, workdir: Path) -> Invocation:
        ctx = ctx_size_for(prompt_tokens, query.max_tokens, cfg.ctx_min)
        argv = build_argv(cfg, query.prompt, query.max_tokens, ctx, Path(workdir) / LOG_DIR, self.ignore_eos)
        return Invocation(argv, ctx, prompt_tokens, Path(workdir),
                          too_long(self.n_ctx_train, prompt_tokens, query.max_tokens, ctx))

    # -- the engine's own account ---------------------------------------------------------
    def timings(self, workdir: Path) -> tuple[dict, dict, Path | None, str]:
        """(the YAML, llama.cpp's timings from it and from stderr, the YAML's path, stderr's text)."""
        yaml_path = llamalog.find_yaml(workdir / LOG_DIR)
        y = llamalog.parse_yaml(yaml_path) if yaml_path else {}
        stderr_text = llamalog.tail(workdir / store.RAW_STDERR, 200_000)
        llama = {k: y[k] for k in llamalog.TIMING_KEYS if k in y}
        llama.update(llamalog.parse_stderr(stderr_text))
        return y, llama, yaml_path, stderr_text

    def attribute(self, chunks: list[tuple[int, bytes]], output_ids: list) -> tuple[dict, list[bytes]]:
        """The stream's bytes attributed to the output tokens the YAML lists: (attribution, pieces)."""
        out_pieces = [self.pieces[i] for i in output_ids if isinstance(i, int) and 0 <= i < len(self.pieces)]
        if not chunks:
            return {"matched": False, "t_echo_ns": None, "t_tok_ns": []}, out_pieces
        return metrics.attribute(chunks, out_pieces), out_pieces

    def bare(self, inv: Invocation) -> float:
        (inv.workdir / LOG_DIR).mkdir(parents=True, exist_ok=True)  # main writes its -ld YAML there
        return super().bare(inv)

    # -- one query -----------------------------------------------------------------------
    def measure(self, inv: Invocation, cfg, samplers: list) -> Outcome:
        if inv.refusal:
            return Outcome.failed(*inv.refusal, **{F.PROMPT_TOKENS_EST: inv.prompt_tokens})
        (inv.workdir / LOG_DIR).mkdir(parents=True, exist_ok=True)
        child, harness_cpu_s = spawn(self.executor, inv, cfg, samplers)

        y, llama, yaml_path, stderr_text = self.timings(inv.workdir)
        ids = y.get(F.OUTPUT_TOKENS) or []
        attributed, out_pieces = self.attribute(child.chunks, ids)
        prompt_ids = y.get(F.PROMPT_TOKENS)
        n_prompt = len(prompt_ids) if isinstance(prompt_ids, list) else None
        account = Account(llama, n_prompt, len(ids), out_pieces, stderr_text,
                          None if y else "main exited 0 but wrote no -ld YAML file",
                          # main writes its own log under this name into its working folder
                          {store.RAW_MAIN_LOG: inv.workdir / store.RAW_MAIN_LOG})
        if yaml_path:
            account.files[store.RAW_ENGINE_YAML] = yaml_path
        return outcome(inv, cfg, child, harness_cpu_s, attributed, account, self.ignore_eos)


def too_long(n_ctx_train: int | None, prompt_tokens: int, max_tokens: int, ctx: int) -> tuple[str, str] | None:
    """The refusal of a query whose context would exceed the model's training context."""
    if n_ctx_train and ctx > n_ctx_train:
        return ("too_long", f"prompt of {prompt_tokens} tokens + {max_tokens} output tokens needs a context of "
                            f"{ctx}, more than the model's {n_ctx_train}: shorten the prompt or lower max_tokens")
    return None


def spawn(executor, inv: Invocation, cfg, samplers: list):
    """Run the invocation's program with the samplers watching: (its ChildResult, our CPU time).
    `executor` has engine/child.run_child's signature (None: run_child itself; tests hand in a fake)."""
    if executor is None:
        from orchestrator.engine import child as child_mod

        executor = child_mod.run_child
    cpu0 = _cpu_self_s()
    child = executor(inv.argv, inv.workdir, inv.workdir / store.RAW_STDERR, samplers, cfg.idle_timeout_s,
                     cfg.timeout_s)
    harness_cpu_s = _cpu_self_s() - cpu0
    _check_child_had_room(inv.workdir, child)
    return child, harness_cpu_s


@dataclass
class Account:
    """What a llama.cpp program said about one query, read from its own files: its timings
    (llamalog.TIMING_KEYS names), prompt tokens, how many output tokens and their bytes, its
    stderr, why the account is missing (None when it is there), and its files to keep."""

    llama: dict
    n_prompt: int | None
    n_output_ids: int
    out_pieces: list[bytes]
    stderr_text: str
    missing: str | None
    files: dict[str, Path] = field(default_factory=dict)


def outcome(inv: Invocation, cfg, child, harness_cpu_s: float, attributed: dict, account: Account,
            ignore_eos: bool) -> Outcome:
    """The measured fields, timeline and raw files of one query a llama.cpp program answered on
    the pty: the same for every such engine, so that a record means the same whichever ran it."""
    llama = account.llama
    fig = metrics.stream_figures(child.t_spawn_ns, attributed["t_echo_ns"], attributed["t_tok_ns"],
                                 child.t_exit_ns, account.n_prompt)
    fields = {
        F.STATUS: child.status,
        F.EXIT_CODE: child.exit_code,
        F.SIGNAL: child.signal,
        F.ERROR: child.error,
        F.PROMPT_TOKENS_EST: inv.prompt_tokens,
        F.PROMPT_TOKENS: account.n_prompt,
        F.CTX_SIZE: inv.ctx_size,
        F.IGNORE_EOS: ignore_eos,
        **fig,
        F.LLAMA: llama,
        # a process sampler's aggregate raises this to the larger of kernel and samples
        F.PEAK_RSS_BYTES: child.peak_rss_bytes,
        F.PEAK_RSS_KERNEL_BYTES: child.peak_rss_bytes,
        F.MAIN_CPU_S: child.cpu_s,
        F.HARNESS_CPU_S: harness_cpu_s,
        F.OUTPUT_TEXT: b"".join(account.out_pieces).decode("utf-8", "replace"),
    }
    if child.status == "ok" and account.missing:
        fields.update({F.STATUS: "error", F.ERROR: account.missing})
    if fields[F.STATUS] != "ok":
        fields[F.STDERR_TAIL] = account.stderr_text[-2000:]
    if child.status == "ok" and not account.missing:
        fields[F.VALIDATION] = metrics.validate(fig, llama, account.n_output_ids, attributed)
    if llama.get("cuda_arch_mismatch"):
        fields[F.ERROR] = ("the CUDA kernels were not built for this GPU's architecture (\"no kernel image is "
                           "available\"): edgebench bootstrap --redo build")
    timeline = {"t_echo_s": fig.get(F.T_ECHO_S), "t_first_token_s": (fig.get(F.T_TOK_S) or [None])[0],
                "t_last_token_s": (fig.get(F.T_TOK_S) or [None])[-1], "t_exit_s": fig[F.TOTAL_S],
                "output_tokens": fig[F.OUTPUT_TOKENS], "kernel_peak_rss_bytes": child.peak_rss_bytes,
                F.MAIN_CPU_S: child.cpu_s, "n_gpu_layers": cfg.n_gpu_layers}
    files = {store.RAW_STDERR: inv.workdir / store.RAW_STDERR, **account.files}
    blobs = {
        # the raw stdout bytes: the prompt echo then the tokens, as the binary wrote them
        store.RAW_STREAM: b"".join(b for _, b in child.chunks),
        store.RAW_STREAM_INDEX: json.dumps({"t_spawn_ns": child.t_spawn_ns, "argv": inv.argv,
                                            "chunks": [[t - child.t_spawn_ns, len(b)] for t, b in child.chunks]
                                            }).encode("utf-8"),
    }
    return Outcome(fields, child.samples, timeline, files, blobs)


def _check_child_had_room(workdir: Path, child) -> None:
    from orchestrator.diskspace import free_bytes

    ours = sum(len(b) + 32 for _, b in child.chunks)  # stream.bin, and a [t, n] pair each in stream.json
    if free_bytes(workdir) < AFTER_QUERY_MIN_FREE_BYTES + ours:
        raise OSError(errno.ENOSPC, "No space left on device (the disk filled while main ran)", str(workdir))
