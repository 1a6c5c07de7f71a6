"""`make bench`'s figures of the load client (orchestrator/bench.py): its own CPU per request and its
send lag, at the highest rate of a short constant-rate sweep on the bench's model with the server
built beside main. The client shares the board's cores with the server it loads: what it costs is
taken from the server, and a late send makes the offered rate a lie."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

BENCH_RATES = (1.0, 4.0)  # the last is "the highest rate tried"
BENCH_REQUESTS = 8  # per point: the simple queries, round and round
BENCH_SLOTS = 4
CATEGORY = "simple"
TARGETS = {
    # a request costs the server seconds of CPU on a Nano; the client's share must stay a rounding error
    "load_client_cpu_ms_per_request": 20.0,
    # the load point is flagged client-bound beyond this (orchestrator/load/point.py)
    "load_send_lag_p99_ms": 50.0,
}


def server_program(cfg) -> Path:
    from orchestrator.engine import registry

    return Path(cfg.binary) if cfg.engine == "server" else registry.program_beside(cfg.binary, "server")


def figures(cfg, work: Path) -> dict:
    """{figure: (value, (baseline's meaning, baseline))}, empty when no server is built beside main."""
    from orchestrator.load import format as fmt
    from orchestrator.load.sweep import LoadSweep, plan
    from orchestrator.slo import DEFAULT_SLO

    program = server_program(cfg)
    if not program.is_file():
        return {}
    lcfg = replace(cfg, engine="server", binary=program, out_dir=work, categories=(CATEGORY,), limit=None)
    points = plan(rates=list(BENCH_RATES), sweep=False, concurrency=[], sync=False, n=BENCH_REQUESTS,
                  arrivals="constant", seed=cfg.seed)
    job = LoadSweep.create(lcfg, work / "load-bench", points, slots=BENCH_SLOTS, slo=dict(DEFAULT_SLO), sweep=False,
                           arrivals="constant", log=lambda s: None)
    res = job.run()
    top = max(res[fmt.RESULT_POINTS], key=lambda p: p[fmt.RATE])
    rate, server_cpu = top[fmt.RATE], top[fmt.SERVER_CPU_S]
    server_ms = server_cpu / top[fmt.N_SENT] * 1000 if server_cpu is not None else None
    return {
        "load_client_cpu_ms_per_request": (top[fmt.CLIENT_CPU_PER_REQUEST_S] * 1000,
                                           (f"the server's CPU per request at {rate:g}/s, ms", server_ms)),
        "load_send_lag_p99_ms": (top[fmt.SEND_LAG][fmt.P99] * 1000,
                                 (f"the gap between sends at {rate:g}/s, ms", 1000 / rate)),
    }
