"""Today's llama.cpp `llama-completion` (bootstrap step llama-current), one process per query:
the one-shot successor of a33e6a0's `main`, measured the same way (engine/llama_main.py) so
that a record means the same whichever engine wrote it. docs/engines.md says how each figure
is obtained.

What differs from `main`: there is no `-ld` YAML. llama.cpp's own timings are the
`common_perf_print` lines on stderr. The program prints no token ids, so where each token's
bytes begin and end comes from its own debug log (`--log-file`, verbosity 5): it logs
`n_remain: K` right before it prints each sampled token, in one ordered queue with the tokens'
text, so the bytes between two such lines are one token's piece exactly as the program printed
it (a piece split by a newline or a multi-byte character stays one token)."""

from __future__ import annotations

import re
from pathlib import Path

from orchestrator import fields as F
from orchestrator import store
from orchestrator.engine import llamalog, metrics
from orchestrator.engine.argv import ctx_size_for, llama_argv
from orchestrator.engine.base import Engine, Invocation, Outcome
from orchestrator.engine.llama_main import Account, outcome, spawn, too_long

ENGINE_LOG = "completion.log"  # its --log-file, in its working folder; kept as the raw main.log
# The end of a one-shot run on stdout: an end-of-generation token adds " [end of text]\n",
# then LOG("\n\n") in every case (tools/completion/completion.cpp).
TRAILER = b"\n\n"
EOG_MARK = b" [end of text]\n"

_PERF = re.compile(rb"common_perf_print:\s+(?P<what>[a-z ]+?) time =\s*(?P<ms>-?[\d.]+) ms"
                   rb"(?: /\s*(?P<n>\d+) (?P<unit>tokens|runs))?")
_PERF_KEYS = {  # line -> (time key, count key): the names main's YAML uses (llamalog.TIMING_KEYS)
    b"load": ("t_load_us", None),
    b"prompt eval": ("t_p_eval_us", "n_p_eval"),
    b"eval": ("t_eval_us", "n_eval"),
    b"sampling": ("t_sample_us", None),
    b"samplers": (None, "n_sampler_accepts"),
    b"total": ("t_total_us", None),
    b"unaccounted": ("t_unaccounted_us", None),
}
_KV = re.compile(r"llama_kv_cache:\s+size\s*=\s*([\d.]+) MiB")
# an entry's stamp and level, "M.SS.mmm.uuu D " (common/log.cpp; M: minutes, unpadded)
_REMAIN = re.compile(rb"(?P<min>\d+)\.\d\d\.\d\d\d\.\d\d\d D n_remain: -?\d+\n")
_STAMP_REST = re.compile(rb"\.\d\d\.\d\d\d\.\d\d\d [DIWE] ")


# Upstream's log thread is not waited for at exit: without edgebench's patch a busy CPU can cut
# the last lines, the timings, from a run that otherwise went well.
MISSING_TIMINGS = ("llama-completion exited 0 but its log holds no common_perf_print timings; a build without "
                   "edgebench's log-flush patch can lose its last log lines when the CPU is busy: "
                   "use the one `edgebench bootstrap --engine current` builds")


def parse_perf(text: bytes) -> dict:
    """llama.cpp's own account from `common_perf_print` (stderr or the log file), in main's
    YAML units: microseconds and counts."""
    out: dict = {}
    for m in _PERF.finditer(text):
        time_key, count_key = _PERF_KEYS.get(m.group("what").strip(), (None, None))
        if time_key:
            out[time_key] = round(float(m.group("ms")) * 1000)
        if count_key and m.group("n") is not None:
            out[count_key] = int(m.group("n"))
    if "n_sampler_accepts" in out and "n_p_eval" in out:
        # the sampler chain counts every token it accepts: each prompt token once (completion.cpp
        # feeds them in for repetition penalties), then each sampled one. main's n_sample is the latter.
        out["n_sample"] = out["n_sampler_accepts"] - out["n_p_eval"]
    return out


def parse_stderr(text: str) -> dict:
    out = llamalog.parse_stderr(text)
    kv = _KV.findall(text)
    if kv:
        out["kv_self_mib"] = float(kv[-1])
    return out


def token_pieces(log: bytes) -> list[bytes]:
    """Each generated token's bytes, in order, from the program's debug log: what follows an
    `n_remain: K` line up to the next log entry. Every entry but the output text starts with
    its timestamp and level ("0.01.163.141 D "), and the next entry's minutes are those of the
    `n_remain` line or later: that tells a token ending in digits from the stamp after it."""
    pieces = []
    marks = list(_REMAIN.finditer(log))
    for i, m in enumerate(marks):
        seg_start = m.end()
        nxt = _STAMP_REST.search(log, seg_start)
        end = len(log) if nxt is None else _stamp_start(log, seg_start, nxt.start(), int(m.group("min")))
        piece = log[seg_start:end]
        pieces.append(_without_trailer(piece) if i == len(marks) - 1 else piece)
    return pieces


def _stamp_start(log: bytes, lo: int, rest_at: int, minutes: int) -> int:
    """Where the stamp whose `.SS.mmm.uuu [DIWE] ` part starts at `rest_at` begins: the smallest
    minute count, not before `minutes`, that the bytes before it spell."""
    for m in range(minutes, minutes + 60):
        digits = str(m).encode()
        if rest_at - len(digits) >= lo and log[rest_at - len(digits):rest_at] == digits:
            return rest_at - len(digits)
    return rest_at


def _without_trailer(seg: bytes) -> bytes:
    """The last token's segment runs on into the closing output: cut it (see TRAILER)."""
    for tail in (EOG_MARK + TRAILER, TRAILER):
        if seg.endswith(tail):
            return seg[: -len(tail)]
    return seg


def build_argv(cfg, prompt: str, max_tokens: int, ctx_size: int, log_file: Path, ignore_eos: bool) -> list[str]:
    return llama_argv(cfg, prompt, max_tokens, ctx_size, ignore_eos, [
        "--no-escape",  # the prompt as written: by default it turns a typed "\\n" into a newline
        "-no-cnv",  # one-shot: no chat loop waiting for input after the answer
        "--no-warmup",  # else an empty decode runs before the prompt, inside the load time
        "-fit", "off",  # the context and layers asked for, not ones fitted to free memory
        "--log-colors", "off",  # a pty is a terminal: colour codes would enter the log
        # the token boundaries (token_pieces): every entry stamped, debug entries included
        "--log-prefix", "--log-timestamps", "-lv", "5", "--log-file", str(log_file),
    ])


class LlamaCompletion(Engine):
    name = "completion"
    title = "today's llama.cpp llama-completion (0c1e57098), one process per query"

    def __init__(self, n_ctx_train: int | None, ignore_eos: bool, executor=None):
        self.n_ctx_train, self.ignore_eos, self.executor = n_ctx_train, ignore_eos, executor

    @classmethod
    def create(cls, cfg, prep, executor=None) -> LlamaCompletion:
        return cls(prep.n_ctx_train, prep.ignore_eos, executor)

    def invocation(self, cfg, query, prompt_tokens: int, workdir: Path) -> Invocation:
        ctx = ctx_size_for(prompt_tokens, query.max_tokens, cfg.ctx_min)
        argv = build_argv(cfg, query.prompt, query.max_tokens, ctx, Path(workdir) / ENGINE_LOG, self.ignore_eos)
        return Invocation(argv, ctx, prompt_tokens, Path(workdir),
                          too_long(self.n_ctx_train, prompt_tokens, query.max_tokens, ctx))

    def measure(self, inv: Invocation, cfg, samplers: list) -> Outcome:
        if inv.refusal:
            return Outcome.failed(*inv.refusal, **{F.PROMPT_TOKENS_EST: inv.prompt_tokens})
        child, harness_cpu_s = spawn(self.executor, inv, cfg, samplers)
        log_path = inv.workdir / ENGINE_LOG
        log = log_path.read_bytes() if log_path.is_file() else b""
        stderr_text = llamalog.tail(inv.workdir / store.RAW_STDERR, 200_000)
        llama = parse_perf(log) or parse_perf(stderr_text.encode("utf-8", "surrogateescape"))
        llama.update(parse_stderr(stderr_text))
        pieces = token_pieces(log)
        missing = None if "t_eval_us" in llama else MISSING_TIMINGS
        attributed = self.attribute(child.chunks, pieces)
        account = Account(llama, llama.get("n_p_eval"), len(pieces), pieces, stderr_text, missing,
                          {store.RAW_MAIN_LOG: log_path})
        return outcome(inv, cfg, child, harness_cpu_s, attributed, account, self.ignore_eos)

    @staticmethod
    def attribute(chunks: list[tuple[int, bytes]], pieces: list[bytes]) -> dict:
        """The stream's bytes attributed to the tokens, once the run's closing bytes are off."""
        if not chunks:
            return {"matched": False, "t_echo_ns": None, "t_tok_ns": []}
        stream = b"".join(b for _, b in chunks)
        cut = 0
        for tail in (EOG_MARK + TRAILER, TRAILER):
            if stream.endswith(b"".join(pieces) + tail):
                cut = len(tail)
                break
        kept, left = [], len(stream) - cut
        for t, b in chunks:
            if left <= 0:
                break
            kept.append((t, b[:left]))
            left -= len(b)
        return metrics.attribute(kept, pieces)
