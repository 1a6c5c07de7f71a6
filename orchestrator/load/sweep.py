"""A load sweep: one server with `slots` parallel slots, its load points one after another, every
request on disk as it finishes and every point's window (CPU, memory, samplers) before the next
point starts. An interrupted sweep resumes at the point it was in: that point runs again from its
start under the next attempt number, and its earlier attempt's requests are kept on disk but left
out (format.kept_requests)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

from orchestrator import fields as F
from orchestrator import runfacts
from orchestrator.errors import UserError
from orchestrator.load import format as fmt
from orchestrator.load import point as stats_point
from orchestrator.load.client import LoadClient, cpu_self_s, queue_order
from orchestrator.load.profile import CONCURRENCY, SYNC, Point, rate_points, sweep_rates
from orchestrator.slo import dur


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def plan(*, rates: list[float] | None, sweep: bool, concurrency: list[int], sync: bool, n: int, arrivals: str,
         seed: int) -> list[Point]:
    """The load points in the order they run: synchronous, fixed concurrencies, then rates lowest first.
    A sweep starts with a synchronous point; its rates follow once that point has run."""
    pts = [Point(SYNC, n)] if sync or sweep else []
    pts += [Point(CONCURRENCY, n, concurrency=c) for c in sorted(set(concurrency))]
    pts += rate_points(rates or [], n, arrivals, seed)
    return pts


def entry(p: Point) -> dict:
    return {**p.to_json(), fmt.LABEL: p.label}


class LoadSweep:
    def __init__(self, cfg, folder: Path, doc: dict, log=print, samplers=None):
        self.cfg, self.folder, self.doc, self.log = cfg, Path(folder), doc, log
        self._samplers = samplers

    # -- building -----------------------------------------------------------------------
    @classmethod
    def create(cls, cfg, folder: Path, points: list[Point], *, slots: int, slo: dict, sweep: bool,
               arrivals: str, log=print, samplers=None) -> LoadSweep:
        from orchestrator.session import prepare

        prep = prepare(cfg)  # binary, model, workload: every check before the folder exists
        if not points:
            raise UserError("no load point to run", fix="--rates 0.5,1,2, --concurrency 1,2, --sync or --sweep")
        mix = ", ".join(sorted({q.category for q in prep.queries}))
        doc = {fmt.CREATED_AT: now(), fmt.STATUS: fmt.RUNNING, fmt.CONFIG: cfg.to_json(), fmt.SLOTS: slots,
               fmt.SLO: slo, fmt.SWEEP: {fmt.SWEEP_ON: sweep, fmt.ARRIVALS: arrivals, fmt.SEED: cfg.seed,
                                         fmt.FRACTIONS: None},
               fmt.PLAN: [entry(p) for p in points], fmt.MIX: f"this mix ({mix})",
               fmt.WORKLOAD: {"path": str(cfg.workload), "queries": [q.id for q in prep.queries]},
               fmt.PLATFORM: runfacts.platform(cfg.out_dir), fmt.BINARY: runfacts.binary_facts(cfg.binary),
               fmt.MODEL: runfacts.model_facts(cfg.model, prep.model_info)}
        fmt.create(folder, doc)
        return cls(cfg, folder, fmt.read_doc(folder), log, samplers)

    @classmethod
    def resume(cls, folder: Path, log=print, samplers=None) -> LoadSweep:
        from orchestrator import runconfig

        doc = fmt.read_doc(folder)
        if doc.get(fmt.STATUS) == fmt.COMPLETE:
            raise UserError(f"{folder} is a finished load sweep: nothing to resume",
                            fix=f"edgebench report {folder}, or edgebench load --out NEW_DIR for another sweep")
        cfg = runconfig.recorded(doc[fmt.CONFIG], Path(doc[fmt.CONFIG]["out_dir"]))
        _refuse_changed(folder, doc, cfg)
        return cls(cfg, folder, doc, log, samplers)

    def pending(self) -> list[int]:
        done = fmt.finished_points(self.folder)
        return [i for i in range(len(self.doc[fmt.PLAN])) if i not in done]

    # -- measuring ------------------------------------------------------------------------
    def run(self) -> dict:
        """Every pending point, then load.json's `results`; the server and samplers are stopped on any way out."""
        from orchestrator.engine.llama_server import LlamaServer
        from orchestrator.interrupts import raise_if_received
        from orchestrator.session import default_samplers, prepare

        prep = prepare(self.cfg)
        engine = LlamaServer.create(self.cfg, prep)
        slots = self.doc[fmt.SLOTS]
        engine.slots, engine.base_ctx = slots, engine.base_ctx * slots  # each slot holds a per-query context
        engine.run_dir, engine.resume_command = self.folder, "edgebench load --resume"
        samplers = self._samplers if self._samplers is not None else default_samplers(self.cfg)
        queries = queue_order(prep.queries, self.cfg.seed)
        stop = threading.Event()
        lock = threading.Lock()

        def on_request(line):
            with lock:
                fmt.append(self.folder, fmt.REQUESTS, [line])

        opened = []
        try:
            for s in samplers:
                s.open()
                opened.append(s)
            self._set({fmt.SERVER: engine.open(self.cfg, self.log), fmt.SAMPLERS: [s.info() for s in samplers],
                       fmt.CTX_PER_SLOT: engine.base_ctx // slots, fmt.STATUS: fmt.RUNNING})
            client = LoadClient(engine, self.cfg, on_request, stop)
            i = self._next()
            while i is not None:
                self._point(i, engine, client, samplers, queries, raise_if_received)
                i = self._next()
        except BaseException:
            stop.set()
            self._set({fmt.STATUS: fmt.INTERRUPTED})
            raise
        finally:
            engine.close()
            for s in opened:
                s.close()
        return self.finish()

    def _next(self) -> int | None:
        """The first point not finished; a sweep's rates are added once its synchronous point has run
        (also when a resume finds that point finished and the rates not yet written)."""
        pending = self.pending()
        planned = self.doc[fmt.PLAN]
        if not pending and self.doc[fmt.SWEEP][fmt.SWEEP_ON] and not any(p.get(fmt.RATE) for p in planned):
            sync = [r for r in fmt.kept_requests(self.folder) if r[fmt.POINT] == 0]
            self._add_sweep_rates(sync, planned[0][fmt.N])
            pending = self.pending()
        return pending[0] if pending else None

    def _point(self, i: int, engine, client: LoadClient, samplers, queries, check) -> None:
        p = Point.from_json(self.doc[fmt.PLAN][i])
        attempt = 1 + max((r[fmt.ATTEMPT] for r in fmt.read(self.folder, fmt.REQUESTS) if r[fmt.POINT] == i),
                          default=-1)
        if not engine.server.alive():
            engine.restart(engine.settings, "the server was not running before a load point")
        srv = engine.server
        self.log(f"[{i + 1}/{len(self.doc[fmt.PLAN])}] {p.label}: {p.n} requests"
                 + (f" (attempt {attempt + 1})" if attempt else ""))
        reset = srv.reset_peak_rss()
        server_cpu0, client_cpu0 = srv.cpu_s(), cpu_self_s()
        t0 = time.perf_counter_ns()
        for s in samplers:
            s.start(srv.pid, t0)
        samples = {}
        try:
            client.run(i, attempt, p, queries, t0, check)
        finally:
            for s in samplers:
                samples[s.name] = s.stop()
        window_s = (time.perf_counter_ns() - t0) / 1e9
        client_cpu = cpu_self_s() - client_cpu0
        server_cpu1 = srv.cpu_s()
        server_cpu = server_cpu1 - server_cpu0 if server_cpu0 is not None and server_cpu1 is not None else None
        peak = srv.peak_rss_bytes() if reset else None
        reqs = [r for r in fmt.read(self.folder, fmt.REQUESTS) if r[fmt.POINT] == i and r[fmt.ATTEMPT] == attempt]
        timeline = {"t_exit_s": window_s, F.OUTPUT_TOKENS: sum(r.get(F.OUTPUT_TOKENS) or 0 for r in reqs),
                    "kernel_peak_rss_bytes": peak, F.MAIN_CPU_S: server_cpu, F.IDLE_POWER_MW: None,
                    "n_gpu_layers": self.cfg.n_gpu_layers}
        figures = {}
        for s in samplers:
            figures.update(s.aggregate(samples[s.name], timeline))
        fmt.append(self.folder, fmt.SAMPLES, [{fmt.POINT: i, fmt.ATTEMPT: attempt, fmt.SAMPLER: name, **x}
                                              for name, xs in samples.items() for x in xs])
        fmt.append(self.folder, fmt.POINTS, [{
            fmt.POINT: i, fmt.ATTEMPT: attempt, fmt.WINDOW_S: window_s, fmt.CLIENT_CPU_S: client_cpu,
            fmt.SERVER_CPU_S: server_cpu, fmt.SERVER_PEAK_RSS_BYTES: peak, fmt.SERVER_PID: srv.pid,
            fmt.SAMPLER_FIGURES: figures}])
        f = stats_point.figures(self.doc[fmt.PLAN][i], reqs, None, self.doc[fmt.SLO])
        self.log(f"    {f[fmt.N_OK]}/{f[fmt.N_SENT]} ok, {f[fmt.N_MET]} within the budget; TTFT p90 "
                 f"{dur(f[fmt.TTFT][fmt.P90])}, TBT p90 {dur(f[fmt.TBT][fmt.P90])}, send lag p99 "
                 f"{dur(f[fmt.SEND_LAG][fmt.P99])}")

    def _add_sweep_rates(self, reqs: list[dict], n: int) -> None:
        from orchestrator.load.profile import SWEEP_FRACTIONS

        e2e = [r[fmt.E2E_S] for r in reqs if r.get(F.STATUS) == "ok" and r.get(fmt.E2E_S)]
        try:
            rates = sweep_rates(e2e, self.doc[fmt.SLOTS])
        except ValueError as exc:
            raise UserError(f"--sweep: {exc}", fix="read server/server.log in the load folder; or give --rates") \
                from None
        sw = self.doc[fmt.SWEEP]
        pts = rate_points(rates, n, sw[fmt.ARRIVALS], sw[fmt.SEED])
        self.log(f"    sweep rates: {', '.join(f'{r:g}' for r in rates)} requests/s")
        self._set({fmt.PLAN: self.doc[fmt.PLAN] + [entry(p) for p in pts],
                   fmt.SWEEP: {**sw, fmt.FRACTIONS: list(SWEEP_FRACTIONS)}})

    def finish(self) -> dict:
        res = stats_point.results(self.doc, fmt.kept_requests(self.folder), fmt.finished_points(self.folder))
        self._set({fmt.RESULTS: res, fmt.STATUS: fmt.COMPLETE, fmt.FINISHED_AT: now()})
        return res

    def _set(self, keys: dict) -> None:
        self.doc.update(keys)
        fmt.write_doc(self.folder, self.doc)


def _refuse_changed(folder: Path, doc: dict, cfg) -> None:
    """A resumed sweep's points must be measured by the server and model its first points were: the
    knee compares them."""
    from orchestrator.net import sha256_file

    for what, path, recorded in (("server", cfg.binary, doc[fmt.BINARY]), ("model", cfg.model, doc[fmt.MODEL])):
        now_sha = sha256_file(path) if Path(path).is_file() else None
        if now_sha != recorded.get("sha256"):
            state = "is gone" if now_sha is None else "has changed since the sweep started"
            raise UserError(f"the {what} {path} {state}: the rest of {folder} would not compare with its first "
                            "points", fix=f"restore {path}, or start a new sweep: edgebench load --out NEW_DIR")
