"""The load client: one thread per request in flight, each one streamed `POST /completion` read by
engine/sse.py and turned into figures by the server engine itself (LlamaServer.figures: the same
TTFT, TBT and check against the server's `timings` as a run's query).

Open loop: the calling thread waits for each request's deadline (profile.deadlines) on
perf_counter_ns and hands the request to a thread of its own, so a slow answer never delays the
next send. Closed loop: N threads each send their next request as soon as their last one ended.
Each finished request goes to `on_request` (the sweep appends it to disk) from the thread that
measured it."""

from __future__ import annotations

import resource
import threading
import time

from orchestrator import fields as F
from orchestrator.engine import sse
from orchestrator.engine.llama_server import request_body
from orchestrator.load import format as fmt
from orchestrator.load.profile import Point, deadlines

_SLICE_S = 0.25  # the longest the dispatcher sleeps before looking for a signal


class Stopped(Exception):
    """The run is stopping (a signal): a request in flight is abandoned."""


def cpu_self_s() -> float:
    """The measuring process's user + system CPU: client threads, samplers, everything of edgebench."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def without_own_queue(validation: dict, in_flight: int) -> dict:
    """The engine's check of TTFT against the server's prompt time holds for a request that had the
    server to itself; sent while others were in flight, its TTFT also holds the wait for a slot or
    for the batch in progress, which the server does not time. That check is then set aside, said
    so, and not counted; the token count and the mean TBT are checked for every request."""
    if not in_flight or fmt.PREFILL not in validation.get(fmt.CHECKS, {}):
        return validation
    checks = dict(validation[fmt.CHECKS])
    prefill = checks.pop(fmt.PREFILL)
    skipped = {fmt.PREFILL: {**prefill, fmt.WHY: f"sent while {in_flight} other requests were in flight"}}
    return {**validation, fmt.CHECKS: checks, fmt.SKIPPED: skipped,
            fmt.CHECK_OK: all(c[fmt.CHECK_OK] for c in checks.values())}


class LoadClient:
    def __init__(self, engine, cfg, on_request, stop: threading.Event | None = None):
        """`engine`: an open LlamaServer; `on_request(line)` receives each finished request's line."""
        self.engine, self.cfg, self.on_request = engine, cfg, on_request
        self.stop = stop or threading.Event()
        self._lock = threading.Lock()
        self._in_flight = 0
        self.errors: list[BaseException] = []

    def run(self, index: int, attempt: int, point: Point, queries: list, t_start_ns: int,
            check=lambda: None) -> None:
        """Send `point.n` requests (queries taken in order, round and round) and wait for every answer.
        `check()` runs between waits in this thread (the run's signal check)."""
        due = deadlines(point)
        todo = [(seq, queries[seq % len(queries)]) for seq in range(point.n)]
        threads = []
        if due is not None:
            for (seq, q), d in zip(todo, due, strict=True):
                self._wait_until(t_start_ns + int(d * 1e9), check)
                th = threading.Thread(target=self._one, args=(index, attempt, seq, q, d, t_start_ns), daemon=True)
                th.start()
                threads.append(th)
        else:
            feed = iter(todo)
            take = threading.Lock()

            def worker():
                while not self.stop.is_set():
                    with take:
                        nxt = next(feed, None)
                    if nxt is None:
                        return
                    self._one(index, attempt, nxt[0], nxt[1], (time.perf_counter_ns() - t_start_ns) / 1e9, t_start_ns)

            for _ in range(1 if point.kind == "sync" else point.concurrency):
                th = threading.Thread(target=worker, daemon=True)
                th.start()
                threads.append(th)
        for th in threads:
            while th.is_alive():
                th.join(_SLICE_S)
                check()
        if self.errors:
            raise self.errors[0]

    def _wait_until(self, t_ns: int, check) -> None:
        while True:
            left = t_ns - time.perf_counter_ns()
            if left <= 0:
                return
            check()
            time.sleep(min(left / 1e9, _SLICE_S))

    def _one(self, index, attempt, seq, query, scheduled_s, t_start_ns) -> None:
        try:
            line = self._measure(query, scheduled_s, t_start_ns)
        except Stopped:
            return
        except BaseException as exc:  # a bug here must stop the sweep, not vanish in a thread
            self.errors.append(exc)
            return
        line.update({fmt.POINT: index, fmt.ATTEMPT: attempt, fmt.SEQ: seq})
        try:
            self.on_request(line)
        except BaseException as exc:  # a full disk: the sweep stops with it
            self.errors.append(exc)

    def _measure(self, query, scheduled_s: float, t_start_ns: int) -> dict:
        eng, cfg = self.engine, self.cfg
        inv = eng.invocation(cfg, query, query.prompt_tokens_est or 0, eng.folder())
        base = {F.QUERY_ID: query.id, F.CATEGORY: query.category, fmt.SCHEDULED_S: scheduled_s}
        if inv.refusal:
            status, error = inv.refusal
            return {**base, F.STATUS: status, F.ERROR: error}
        body = request_body(inv, eng.ignore_eos, eng.kind)

        def on_wait(_):
            if self.stop.is_set():
                raise Stopped

        with self._lock:
            in_flight = self._in_flight
            self._in_flight += 1
        try:
            res = sse.exchange(eng.port, "POST", "/completion", body, cfg.idle_timeout_s, cfg.timeout_s, on_wait)
        finally:
            with self._lock:
                self._in_flight -= 1
        fields, _ = eng.figures(inv, cfg, res, res.t_connect_ns, None, None, None)
        s = 1e-9
        sent = (res.t_send_ns - t_start_ns) * s if res.t_send_ns else None
        line = {**base, fmt.IN_FLIGHT: in_flight, fmt.SENT_S: sent,
                fmt.SEND_LAG_S: sent - scheduled_s if sent is not None else None,
                fmt.END_S: (res.t_end_ns - t_start_ns) * s,
                fmt.E2E_S: (res.t_end_ns - res.t_send_ns) * s if res.t_send_ns else None}
        keep = (F.STATUS, F.ERROR, F.TTFT_S, F.TBT_S, F.TPOT_S, F.OUTPUT_TOKENS, F.PROMPT_TOKENS, F.LLAMA,
                F.OUTPUT_TEXT)
        line.update({k: fields.get(k) for k in keep})
        if F.VALIDATION in fields:
            line[F.VALIDATION] = without_own_queue(fields[F.VALIDATION], in_flight)
        prompt_ms = ((fields.get(F.LLAMA) or {}).get("timings") or {}).get("prompt_ms")
        if line[F.TTFT_S] is not None and prompt_ms is not None:
            line[fmt.QUEUE_WAIT_S] = line[F.TTFT_S] - prompt_ms / 1000
        return line


def queue_order(queries: list, seed: int) -> list:
    """The workload's queries in one shuffled order (the same for a seed): a point's requests mix the
    categories in the workload's proportions from its first request on."""
    import random

    out = list(queries)
    random.Random(seed).shuffle(out)
    return out


