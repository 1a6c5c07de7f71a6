"""A llama.cpp server resident for the whole run (engine/base.py's lifecycle): a33e6a0's `server`
or today's `llama-server`, started by edgebench on 127.0.0.1 and a free port with the run's model
and settings, each query one streamed `POST /completion`. docs/server.md says how each figure is
obtained.

The samplers watch the server's process over each query's window (its request's connect to the
end of its answer); the kernel's own figures for that window come from /proc (engine/resident.py).
A server that dies is started again and the query it was answering recorded as failed; an item
whose settings need another server (a context too small, other threads, batch or GPU layers: an
experiment's variants) gets one, recorded the same way."""

from __future__ import annotations

import json
import resource
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from orchestrator import fields as F
from orchestrator import store
from orchestrator.engine import metrics, sse
from orchestrator.engine.argv import ctx_size_for
from orchestrator.engine.base import Engine, Invocation, Outcome
from orchestrator.engine.llama_main import too_long
from orchestrator.engine.resident import Resident
from orchestrator.errors import UserError

SERVER_DIR = "server"  # in the run folder: the server's working folder, its log (appended over restarts)
SERVER_LOG = "server.log"
HEALTH_POLL_S = 0.01  # the load time is known to this much
LOAD_LIMIT_S = 600.0  # a server still loading after this long is not coming up
# A connection refused or cut by a server that should be up: it is most likely dying; this long to know
DEATH_WAIT_S = 5.0
BIND_RETRIES = 3  # another program may take the free port between our choice and the server's bind


def _cpu_self_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


@dataclass(frozen=True)
class Request(Invocation):
    """One query as a request to the server (`argv`: the server's, for the record)."""

    prompt: str = ""
    max_tokens: int = 0
    seed: int = 0
    settings: tuple = ()


def server_settings(cfg, ctx_size: int) -> tuple:
    """What a server must have been started with to answer a query under `cfg`."""
    return (ctx_size, cfg.threads, cfg.batch_size, cfg.n_gpu_layers)


def server_argv(cfg, settings: tuple, port: int, slots: int = 1) -> list[str]:
    """`slots` > 1 (`edgebench load`): the context is split evenly over them, and continuous batching
    lets a new prompt join the slots already decoding (without it a33e6a0's server takes a new prompt
    only once every slot is idle)."""
    ctx, threads, batch, ngl = settings
    argv = [str(cfg.binary), "-m", str(cfg.model), "-c", str(ctx), "-t", str(threads),
            # loopback only, said explicitly: never a default that could change
            "--host", sse.HOST, "--port", str(port),
            # one slot holds the whole context (today's llama-server splits it over several by default)
            "-np", str(slots)]
    if slots > 1:
        argv.append("-cb")
    if batch:
        argv += ["-b", str(batch)]
    if ngl is not None:
        argv += ["-ngl", str(ngl)]
    return argv


# Which server answers, from its /props: today's llama-server names its build there; a33e6a0's does not.
A33E6A0, CURRENT = "a33e6a0", "llama-server"


def flavour(props: object) -> str:
    return CURRENT if isinstance(props, dict) and "build_info" in props else A33E6A0


def request_body(req: Request, ignore_eos: bool, kind: str = A33E6A0) -> bytes:
    body = {"prompt": req.prompt, "n_predict": req.max_tokens, "seed": req.seed, "ignore_eos": ignore_eos,
            "stream": True,
            # the whole prompt evaluated for every query, as main does (today's server reuses it by default)
            "cache_prompt": False}
    if kind == A33E6A0:
        # its events carry no token ids; with n_probs its last lists the generated tokens' text
        body["n_probs"] = 1
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


# -- from events to tokens ---------------------------------------------------------------------
def piece_bytes(content: str) -> bytes:
    """A token's bytes from a33e6a0's `completion_probabilities[].content`, which writes a lone
    byte of a multi-byte character as the text `byte: \\xNN`."""
    if content.startswith("byte: \\x") and len(content) <= 10:
        try:
            return bytes([int(content[8:], 16)])
        except ValueError:
            pass
    return content.encode("utf-8")


REPLACEMENT = "\ufffd"  # what a33e6a0's JSON writer puts for bytes that are not UTF-8


def held_tokens(content: str, piece: bytes) -> int | None:
    """How many tokens an a33e6a0 event carried before its own: a token whose text ends inside a
    UTF-8 character is held back, left out of the token list, and its bytes sent with the next
    event's text. With SentencePiece only a byte token (one byte) can end inside a character, so
    the bytes before the event's own token count the held ones. None when that cannot be read:
    bytes that were not UTF-8 reach us as U+FFFD, one for one byte or several."""
    if content == piece.decode("utf-8", "replace"):
        return 0
    sent = content.encode("utf-8")
    if REPLACEMENT in content or not sent.endswith(piece):
        return None
    return len(sent) - len(piece)


def token_times(partials: list[tuple[int, dict]], final: dict | None,
                pieces: list[bytes] | None = None) -> tuple[list[int], dict]:
    """(arrival of each generated token, how they were attributed).

    Both servers send one event per generated token but hold back a token that ends inside a
    UTF-8 character (process_token in a33e6a0's server.cpp, in today's server-context.cpp): it
    gets no event of its own, rides on the next event's text, and is named nowhere. Each event's
    own tokens are known: today's llama-server gives their ids (`tokens`; their bytes from the
    model's vocabulary, `pieces`), a33e6a0's lists their text in its last event (n_probs). The
    bytes before them in the event's text, and the server's count of tokens (`predicted_n`), place
    the held ones. Where they do not add up, nothing is guessed and the attribution says so."""
    final = final or {}
    n_tokens = (final.get("timings") or {}).get("predicted_n")
    if partials and all(isinstance(ev.get("tokens"), list) for _, ev in partials):
        how = {"method": "token_ids", "matched": False}
        own = [(len(ev["tokens"]), _vocab_bytes(pieces, ev["tokens"])) for _, ev in partials]
    else:
        how = {"method": "token_text", "matched": False}
        probs = final.get("completion_probabilities")
        if not isinstance(probs, list):
            return [], {**how, "why": "the last event lists no tokens (completion_probabilities)"}
        if len(probs) != len(partials):
            return [], {**how, "why": f"{len(partials)} events for {len(probs)} listed tokens"}
        own = [(1, piece_bytes(p.get("content", "") if isinstance(p, dict) else "")) for p in probs]
    if not isinstance(n_tokens, int):
        return [], {**how, "why": "the last event gives no predicted_n"}
    held = [held_tokens(ev.get("content", ""), piece) if piece is not None else None
            for (_, ev), (_, piece) in zip(partials, own, strict=True)]
    unknown = [i for i, h in enumerate(held) if h is None]
    left = n_tokens - sum(n for n, _ in own) - sum(h for h in held if h is not None)
    if len(unknown) == 1 and left >= 0 or len(unknown) == left:
        for i in unknown:  # one event takes what is left; or each of `left` events one byte of a broken character
            held[i] = left if len(unknown) == 1 else 1
        left = 0
    if left or None in held:
        return [], {**how, "why": f"the events' text leaves {left} of {n_tokens} tokens unplaced"}
    times = [t for (t, _), (n, _), h in zip(partials, own, held, strict=True) for _ in range(n + h)]
    return times, {**how, "matched": True, "held": sum(held)}


def _vocab_bytes(pieces: list[bytes] | None, ids: list) -> bytes | None:
    if pieces is None or not all(isinstance(i, int) and 0 <= i < len(pieces) for i in ids):
        return None
    return b"".join(pieces[i] for i in ids)


def server_llama(final: dict | None, settings: tuple, req: Request, ignore_eos: bool) -> dict:
    """The server's own account, under the names main's YAML gives the same figures: its
    `timings` count the first token in `predicted_n` and time the n − 1 steps after it."""
    final = final or {}
    ctx, threads, batch, ngl = settings
    out = {"ctx_size": ctx, "threads": threads, "batch_size": batch, "n_gpu_layers": ngl, "seed": req.seed,
           "n_predict": req.max_tokens, "ignore_eos": ignore_eos}
    t = final.get("timings")
    if isinstance(t, dict):
        out["timings"] = t
        if t.get("prompt_ms") is not None:
            out["t_p_eval_us"] = t["prompt_ms"] * 1000
            out["n_p_eval"] = t.get("prompt_n")
        if t.get("predicted_n"):
            out["n_eval"] = t["predicted_n"] - 1
            out["t_eval_us"] = (t.get("predicted_ms") or 0) * 1000
    for key in ("tokens_evaluated", "tokens_predicted", "tokens_cached", "truncated", "stopped_limit", "stopped_eos"):
        if key in final:
            out[key] = final[key]
    return out


class LlamaServer(Engine):
    name = "server"
    title = "llama.cpp server (a33e6a0 server or llama-server), resident for the whole run, queries over HTTP"

    def __init__(self, n_ctx_train: int | None, ignore_eos: bool, base_ctx: int, pieces: list[bytes] | None = None):
        """`pieces`: the bytes of each token id (engine/vocab.py), to read today's llama-server's events."""
        self.n_ctx_train, self.ignore_eos, self.base_ctx, self.pieces = n_ctx_train, ignore_eos, base_ctx, pieces
        self.server: Resident | None = None
        self.settings: tuple | None = None
        self.port: int | None = None
        self.load_s: float | None = None
        self.kind = A33E6A0
        self.cfg = None
        self.log = print
        self.slots = 1  # parallel slots (-np); edgebench load sets more, with a context that many times larger
        self.resume_command = "edgebench run --resume"  # what finishes the folder when the server does not come up
        self.run_dir: Path | None = None  # set by the session: where the server's folder goes
        self._dir: Path | None = None
        self._pending: dict | None = None  # a (re)start the next record tells of
        self._failed_start: str | None = None

    @classmethod
    def create(cls, cfg, prep, executor=None) -> LlamaServer:
        # the context every query whose size is known needs; a larger one later restarts the server
        need = [ctx_size_for(q.prompt_tokens_est, q.max_tokens, cfg.ctx_min) for q in prep.queries
                if q.prompt_tokens_est]
        base = max(need, default=cfg.ctx_min)
        if prep.n_ctx_train:
            base = min(base, max(prep.n_ctx_train, cfg.ctx_min))
        return cls(prep.n_ctx_train, prep.ignore_eos, base, prep.pieces)

    # -- the run's server ------------------------------------------------------------------
    def folder(self) -> Path:
        if self._dir is None:
            self._dir = (Path(self.run_dir) / SERVER_DIR if self.run_dir
                         else Path(tempfile.mkdtemp(prefix="edgebench-server-")))
            self._dir.mkdir(parents=True, exist_ok=True)
        return self._dir

    def open(self, cfg, log) -> dict:
        self.cfg, self.log = cfg, log
        self.start(server_settings(cfg, self.base_ctx))
        return self.facts()

    def facts(self) -> dict:
        return {"server_load_s": self.load_s, "pid": self.server.pid if self.server else None, "port": self.port,
                "binary": str(self.cfg.binary), "server": self.kind, "host": sse.HOST,
                "log": str(self.folder() / SERVER_LOG), "argv": self.server.argv if self.server else None}

    def start(self, settings: tuple) -> None:
        """Start a server with `settings` and wait until it answers /health; UserError naming its
        log when it does not come up."""
        log_path = self.folder() / SERVER_LOG
        why = ""
        for _ in range(BIND_RETRIES):
            self.port = sse.free_port()
            self.server = Resident(server_argv(self.cfg, settings, self.port, self.slots), log_path, self.folder())
            try:
                self.server.start()
            except OSError as exc:
                raise UserError(f"cannot start the server {self.cfg.binary}: {exc}",
                                fix="make bootstrap (builds server beside main), or --binary PATH") from None
            why = self._wait_healthy()
            if why is None:
                self.settings = settings
                self.kind = flavour(sse.get_json(self.port, "/props")[1])
                self.log(f"{self.cfg.binary.name} (pid {self.server.pid}) answering on "
                         f"{sse.HOST}:{self.port}, loaded in {self.load_s:.2f} s")
                return
            self.server.stop()
            if "bind" not in self.server.tail(4000):
                break
        raise UserError(f"the server {self.cfg.binary} did not come up: {why}; its log is {log_path}",
                        fix=f"read {log_path} (a model it cannot load, a context too large for memory), "
                            f"then {self.resume_command} {self.run_dir or 'RUN_DIR'}")

    def _wait_healthy(self) -> str | None:
        """None once /health says ok (the load time is then known), else why not."""
        deadline = time.perf_counter_ns() + int(max(LOAD_LIMIT_S, self.cfg.timeout_s) * 1e9)
        from orchestrator.interrupts import raise_if_received

        while time.perf_counter_ns() < deadline:
            ended = self.server.ended()
            if ended:
                return f"it {ended} while loading"
            status, body = sse.get_json(self.port, "/health", timeout_s=5.0)
            if status == 200 and isinstance(body, dict) and body.get("status") == "ok":
                self.load_s = (time.perf_counter_ns() - self.server.t_spawn_ns) / 1e9
                return None
            raise_if_received()
            time.sleep(HEALTH_POLL_S)
        return f"it did not answer /health within {max(LOAD_LIMIT_S, self.cfg.timeout_s):g} s"

    def restart(self, settings: tuple, reason: str) -> dict:
        """Stop the server (if it still runs) and start one with `settings`: what happened, for the record."""
        old = self.server
        note = {"reason": reason, "previous_pid": old.pid if old else None,
                "previous_end": old.ended() if old else None}
        if old and old.ended():
            note["previous_log_tail"] = old.tail(2000)
        if old:
            old.stop()
        self.start(settings)
        note.update(pid=self.server.pid, port=self.port, load_s=self.load_s)
        self.log(f"server restarted ({reason})")
        return note

    def close(self) -> None:
        if self.server:
            self.server.stop()

    # -- one query -------------------------------------------------------------------------
    def invocation(self, cfg, query, prompt_tokens: int, workdir: Path) -> Invocation:
        ctx = ctx_size_for(prompt_tokens, query.max_tokens, cfg.ctx_min)
        refusal = too_long(self.n_ctx_train, prompt_tokens, query.max_tokens, ctx)
        settings = server_settings(cfg, max(ctx, self.settings[0] if self.settings else self.base_ctx))
        argv = server_argv(cfg, settings, self.port or 0, self.slots)
        return Request(argv, settings[0], prompt_tokens, Path(workdir), refusal, prompt=query.prompt,
                       max_tokens=query.max_tokens, seed=cfg.seed, settings=settings)

    def _ensure(self, req: Request) -> dict | None:
        """A server fit for `req`: the running one, or a new one (what happened, for the record)."""
        if self.server is None or not self.server.alive():
            return self.restart(req.settings, "the server was not running")
        if req.settings != self.settings:
            return self.restart(req.settings, "this query needs other server settings "
                                              f"(context, threads, batch, GPU layers: {list(req.settings)})")
        return None

    def bare(self, inv: Invocation) -> float:
        """The same request from a plain HTTP client, read to its end in one piece, against the
        server this run started (the session is open)."""
        import http.client

        self._ensure(inv)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.cfg.timeout_s)
        try:
            started = time.perf_counter()
            conn.request("POST", "/completion", request_body(inv, self.ignore_eos, self.kind),
                         {"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            elapsed = time.perf_counter() - started
        finally:
            conn.close()
        if resp.status != 200:
            raise RuntimeError(f"the server answered {resp.status} to a bare request")
        return elapsed

    def measure(self, inv: Invocation, cfg, samplers: list) -> Outcome:
        from orchestrator.interrupts import raise_if_received

        known = {F.PROMPT_TOKENS_EST: inv.prompt_tokens}
        if inv.refusal:
            return Outcome.failed(*inv.refusal, **known)
        started = self._ensure(inv)
        srv, port = self.server, self.port  # a restart after a failure changes both
        body = request_body(inv, self.ignore_eos, self.kind)
        cpu_harness0 = _cpu_self_s()
        log_offset = srv.log_size()
        # without the reset, VmHWM is the peak of the server's whole life: no figure of this window
        reset = srv.reset_peak_rss()
        cpu0 = srv.cpu_s()
        t0 = time.perf_counter_ns()
        for s in samplers:
            s.start(srv.pid, t0)
        samples: dict[str, list[dict]] = {}
        try:
            res = sse.exchange(port, "POST", "/completion", body,
                               cfg.idle_timeout_s, cfg.timeout_s, on_wait=lambda _: raise_if_received())
        finally:
            for s in samplers:
                samples[s.name] = s.stop()
        cpu1, peak = srv.cpu_s(), srv.peak_rss_bytes() if reset else None
        harness_cpu_s = _cpu_self_s() - cpu_harness0
        window_log = srv.log_since(log_offset)
        fields, timeline = self.figures(inv, cfg, res, t0, cpu0, cpu1, peak)
        fields.update(known)
        fields[F.HARNESS_CPU_S] = harness_cpu_s
        fields[F.SERVER_PID] = srv.pid
        if fields[F.STATUS] != "ok":
            ended = srv.ended() or (srv.wait_end(DEATH_WAIT_S) if res.outcome in ("refused", "closed") else None)
            if ended:
                code, sig = srv.exit_fields()
                when = "before this query reached it" if res.outcome == "refused" else "while answering"
                fields.update({F.STATUS: "crashed" if sig else "error", F.EXIT_CODE: code, F.SIGNAL: sig,
                               F.ERROR: f"the server (pid {srv.pid}) {ended} {when}: {fields[F.ERROR]}"})
            fields[F.STDERR_TAIL] = srv.tail(2000)
            if ended:
                started = self._restart_after(started, fields, f"the server {ended}")
            elif res.outcome in ("idle_timeout", "timeout"):
                # a server that stalled on one request would stall every later one
                started = self._restart_after(started, fields, "the server did not finish answering in time")
        if started:
            fields[F.SERVER_RESTART] = started
        blobs = {
            # the HTTP answer's bytes as they came (head, chunk framing, events)
            store.RAW_STREAM: bytes(res.raw),
            store.RAW_STREAM_INDEX: json.dumps({
                "t_start_ns": t0, "port": port, "pid": srv.pid,
                "t_send_s": (res.t_send_ns - t0) / 1e9 if res.t_send_ns else None,
                "request": json.loads(body),
                "reads": [[t - t0, n] for t, n in res.reads],
                "events": [[e.t_ns - t0, e.field, len(e.data)] for e in res.events]}).encode("utf-8"),
            # what the server logged while it answered this query
            store.RAW_STDERR: window_log,
        }
        return Outcome(fields, samples, timeline, {}, blobs)

    def _restart_after(self, started: dict | None, fields: dict, reason: str) -> dict:
        """The query in flight is recorded failed; the run goes on with a new server."""
        try:
            note = self.restart(self.settings, reason)
        except UserError as exc:  # the next query's _ensure tries again, and stops the run if it fails
            fields[F.ERROR] += f"; it did not come back up: {exc.message}"
            note = {"reason": reason, "restart_failed": exc.message}
        if started:
            note["earlier"] = started
        return note

    def figures(self, inv: Request, cfg, res: sse.Response, t0: int, cpu0, cpu1, peak) -> tuple[dict, dict]:
        events = res.json_events()
        final = next((ev for _, ev in reversed(events) if ev.get("stop")), None)
        partials = [(t, ev) for t, ev in events if not ev.get("stop")]
        t_tok, how = token_times(partials, final, self.pieces)
        t_end = res.t_end_ns or time.perf_counter_ns()
        prompt_n = (final or {}).get("tokens_evaluated") or ((final or {}).get("timings") or {}).get("prompt_n")
        fig = metrics.stream_figures(t0, res.t_send_ns or None, t_tok, t_end, prompt_n)
        fig.pop(F.LOAD_S, None)  # no load per query: the server loaded once (the manifest's server_load_s)
        llama = server_llama(final, inv.settings, inv, self.ignore_eos)
        status, error = _status(res, final, cfg)
        cpu_s = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
        fields = {
            F.STATUS: status, F.ERROR: error, F.EXIT_CODE: None, F.SIGNAL: None,
            F.PROMPT_TOKENS: prompt_n, F.CTX_SIZE: inv.ctx_size, F.IGNORE_EOS: self.ignore_eos,
            **fig, F.LLAMA: llama,
            F.PEAK_RSS_BYTES: peak, F.PEAK_RSS_KERNEL_BYTES: peak, F.MAIN_CPU_S: cpu_s,
            F.OUTPUT_TEXT: "".join(ev.get("content", "") for _, ev in partials),
        }
        if status == "ok":
            fields[F.VALIDATION] = {**metrics.validate(fig, llama, len(t_tok), how), "attribution": how}
        timeline = {"t_echo_s": fig.get(F.T_ECHO_S), "t_first_token_s": (fig.get(F.T_TOK_S) or [None])[0],
                    "t_last_token_s": (fig.get(F.T_TOK_S) or [None])[-1], "t_exit_s": fig[F.TOTAL_S],
                    "output_tokens": fig[F.OUTPUT_TOKENS], "kernel_peak_rss_bytes": peak,
                    F.MAIN_CPU_S: cpu_s, "n_gpu_layers": cfg.n_gpu_layers}
        return fields, timeline

    def info(self) -> dict:
        return {"name": self.name, "title": self.title}


def _status(res: sse.Response, final: dict | None, cfg) -> tuple[str, str | None]:
    if res.outcome == "idle_timeout":
        return "idle_timeout", f"sent nothing for {cfg.idle_timeout_s:g} s (--idle-timeout); request abandoned"
    if res.outcome == "timeout":
        return "timeout", f"answered longer than {cfg.timeout_s:g} s (--timeout); request abandoned"
    if res.outcome != "ok":
        return "error", res.error
    if res.status != 200:
        return "error", f"HTTP {res.status}: {bytes(res.content)[:300].decode('utf-8', 'replace')}"
    errors = [e for e in res.events if e.field == "error"]
    if errors:
        return "error", f"the server answered with an error: {errors[0].data[:300].decode('utf-8', 'replace')}"
    if final is None or not isinstance(final.get("timings"), dict):
        return "error", "the answer ended without its last event (the one with `timings`)"
    return "ok", None
