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
    return {**p.to_json(), "label": p.label}


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
        doc = {"created_at": now(), "status": "running", "config": cfg.to_json(), "slots": slots, "slo": slo,
               "sweep": {"on": sweep, "arrivals": arrivals, "seed": cfg.seed, "fractions": None},
               "points": [entry(p) for p in points], "mix": f"this mix ({mix})",
               "workload": {"path": str(cfg.workload), "queries": [q.id for q in prep.queries]},
               "platform": runfacts.platform(cfg.out_dir), "binary": runfacts.binary_facts(cfg.binary),
               "model": runfacts.model_facts(cfg.model, prep.model_info)}
        fmt.create(folder, doc)
        return cls(cfg, folder, fmt.read_doc(folder), log, samplers)

    @classmethod
    def resume(cls, folder: Path, log=print, samplers=None) -> LoadSweep:
        from orchestrator import runconfig

        doc = fmt.read_doc(folder)
        if doc.get("status") == "complete":
            raise UserError(f"{folder} is a finished load sweep: nothing to resume",
                            fix=f"edgebench report {folder}, or edgebench load --out NEW_DIR for another sweep")
        cfg = runconfig.recorded(doc["config"], Path(doc["config"]["out_dir"]))
        _refuse_changed(folder, doc, cfg)
        return cls(cfg, folder, doc, log, samplers)

    def pending(self) -> list[int]:
        done = fmt.finished_points(self.folder)
        return [i for i in range(len(self.doc["points"])) if i not in done]

    # -- measuring ------------------------------------------------------------------------
    def run(self) -> dict:
        """Every pending point, then load.json's `results`; the server and samplers are stopped on any way out."""
        from orchestrator.engine.llama_server import LlamaServer
        from orchestrator.interrupts import raise_if_received
        from orchestrator.session import default_samplers, prepare

        prep = prepare(self.cfg)
        engine = LlamaServer.create(self.cfg, prep)
        slots = self.doc["slots"]
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
            self._set(server=engine.open(self.cfg, self.log), samplers=[s.info() for s in samplers],
                      ctx_per_slot=engine.base_ctx // slots, status="running")
            client = LoadClient(engine, self.cfg, on_request, stop)
            i = self._next()
            while i is not None:
                self._point(i, engine, client, samplers, queries, raise_if_received)
                i = self._next()
        except BaseException:
            stop.set()
            self._set(status="interrupted")
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
        if not pending and self.doc["sweep"]["on"] and not any(p.get("rate") for p in self.doc["points"]):
            sync = [r for r in fmt.kept_requests(self.folder) if r[fmt.POINT] == 0]
            self._add_sweep_rates(sync, self.doc["points"][0]["n"])
            pending = self.pending()
        return pending[0] if pending else None

    def _point(self, i: int, engine, client: LoadClient, samplers, queries, check) -> None:
        p = Point.from_json(self.doc["points"][i])
        attempt = 1 + max((r[fmt.ATTEMPT] for r in fmt.read(self.folder, fmt.REQUESTS) if r[fmt.POINT] == i),
                          default=-1)
        if not engine.server.alive():
            engine.restart(engine.settings, "the server was not running before a load point")
        srv = engine.server
        self.log(f"[{i + 1}/{len(self.doc['points'])}] {p.label}: {p.n} requests"
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
        timeline = {"t_exit_s": window_s, "output_tokens": sum(r.get(F.OUTPUT_TOKENS) or 0 for r in reqs),
                    "kernel_peak_rss_bytes": peak, F.MAIN_CPU_S: server_cpu, F.IDLE_POWER_MW: None,
                    "n_gpu_layers": self.cfg.n_gpu_layers}
        figures = {}
        for s in samplers:
            figures.update(s.aggregate(samples[s.name], timeline))
        fmt.append(self.folder, fmt.SAMPLES, [{fmt.POINT: i, fmt.ATTEMPT: attempt, "sampler": name, **x}
                                              for name, xs in samples.items() for x in xs])
        fmt.append(self.folder, fmt.POINTS, [{
            fmt.POINT: i, fmt.ATTEMPT: attempt, fmt.WINDOW_S: window_s, fmt.CLIENT_CPU_S: client_cpu,
            fmt.SERVER_CPU_S: server_cpu, fmt.SERVER_PEAK_RSS_BYTES: peak, "server_pid": srv.pid,
            fmt.SAMPLER_FIGURES: figures}])
        f = stats_point.figures(self.doc["points"][i], reqs, None, self.doc["slo"])
        self.log(f"    {f['n_ok']}/{f['n_sent']} ok, {f['n_met']} within the budget; TTFT p90 "
                 f"{_s(f['ttft']['p90'])}, TBT p90 {_s(f['tbt']['p90'])}, send lag p99 {_s(f['send_lag']['p99'])}")

    def _add_sweep_rates(self, reqs: list[dict], n: int) -> None:
        from orchestrator.load.profile import SWEEP_FRACTIONS

        e2e = [r[fmt.E2E_S] for r in reqs if r.get(F.STATUS) == "ok" and r.get(fmt.E2E_S)]
        try:
            rates = sweep_rates(e2e, self.doc["slots"])
        except ValueError as exc:
            raise UserError(f"--sweep: {exc}", fix="read server/server.log in the load folder; or give --rates") \
                from None
        sw = self.doc["sweep"]
        pts = rate_points(rates, n, sw["arrivals"], sw["seed"])
        self.log(f"    sweep rates: {', '.join(f'{r:g}' for r in rates)} requests/s")
        self._set(points=self.doc["points"] + [entry(p) for p in pts],
                  sweep={**sw, "fractions": list(SWEEP_FRACTIONS)})

    def finish(self) -> dict:
        res = stats_point.results(self.doc, fmt.kept_requests(self.folder), fmt.finished_points(self.folder))
        self._set(results=res, status="complete", finished_at=now())
        return res

    def _set(self, **fields) -> None:
        self.doc.update(fields)
        fmt.write_doc(self.folder, self.doc)


def _refuse_changed(folder: Path, doc: dict, cfg) -> None:
    """A resumed sweep's points must be measured by the server and model its first points were: the
    knee compares them."""
    from orchestrator.net import sha256_file

    for what, path, recorded in (("server", cfg.binary, doc["binary"]), ("model", cfg.model, doc["model"])):
        now_sha = sha256_file(path) if Path(path).is_file() else None
        if now_sha != recorded.get("sha256"):
            state = "is gone" if now_sha is None else "has changed since the sweep started"
            raise UserError(f"the {what} {path} {state}: the rest of {folder} would not compare with its first "
                            "points", fix=f"restore {path}, or start a new sweep: edgebench load --out NEW_DIR")


def _s(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s"


