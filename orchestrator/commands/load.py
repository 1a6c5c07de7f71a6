"""`edgebench load`: the resident server under arrival-rate load (docs/load.md); parse options, then
measure under orchestrator.measuring and print each load point's figures and the knee."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator import cliopts, exitcodes
from orchestrator.cliopts import run_default
from orchestrator.sampling.autodetect import GPU_SAMPLERS

_DIR = click.Path(path_type=Path, file_okay=False)
COLUMNS = ["label", "n_sent", "n_ok", "n_met", "slo_attainment", "ttft_p50_s", "ttft_p90_s", "ttft_p99_s",
           "tbt_p90_s", "tpot_p90_s", "e2e_p90_s", "throughput_rps", "goodput_rps", "send_lag_p99_s",
           "client_cpu_per_request_s", "energy_per_request_j"]


@click.command(cls=cliopts.Command, epilog=exitcodes.HELP)
@cliopts.target_options
@click.option("--out", type=_DIR, default=None, help="The load folder to write (default: reports/load-<time>).")
@click.option("--resume", type=click.Path(path_type=Path, file_okay=False, exists=True), default=None,
              help="Finish an interrupted sweep, from the load point it was in.")
@click.option("--rates", default=None, metavar="R1,R2,...", help="Open-loop points at these requests per second.")
@click.option("--sweep", is_flag=True, help="A synchronous point first, then rates around the capacity it suggests "
                                            "(the default when no point is given).")
@click.option("--concurrency", default=None, metavar="N1,N2,...", help="Closed-loop points: N requests always in "
                                                                       "flight.")
@click.option("--sync", is_flag=True, help="A synchronous point: one request at a time.")
@click.option("--arrivals", type=click.Choice(["poisson", "constant"]), default="poisson", show_default=True,
              help="How requests arrive at a rate: Poisson (seeded by --seed) or evenly spaced.")
@click.option("--requests", "n_requests", type=click.IntRange(min=1), default=None,
              help="Requests per load point (default: the selected queries, each once).")
@click.option("--slots", type=click.IntRange(min=1), default=4, show_default=True,
              help="The server's parallel slots (-np), each with a query's context.")
@click.option("--slo", default=None, metavar="ttft=2s,tbt=200ms",
              help="The latency budget a request meets (the report's --slo): its TTFT, and the 90th percentile "
                   "of its token gaps. Default ttft=2s,tbt=200ms.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Queries per category.")
@click.option("--category", "categories", multiple=True, help="Only this category (repeatable).")
@click.option("--seed", type=int, default=None, help=run_default("Sampling and arrival seed.", "seed"))
@click.option("--threads", "-t", type=click.IntRange(min=1), default=None, help="server -t (default: all cores).")
@click.option("--ngl", "n_gpu_layers", type=click.IntRange(min=0), default=None, help="server -ngl.")
@click.option("--interval", "interval_s", type=click.FloatRange(min=0.001), default=None,
              help=run_default("Sampling interval, seconds.", "interval_s"))
@click.option("--gpu-sampler", type=click.Choice(GPU_SAMPLERS), default=None,
              help="GPU/board telemetry source (default: the first this machine offers, else none).")
@click.option("--idle-timeout", "idle_timeout_s", type=click.FloatRange(min=0.1), default=None,
              help="Abandon a request silent for this many seconds (default: --timeout; a request waiting for a "
                   "free slot is silent by design).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0.1), default=None,
              help=run_default("Abandon a request answering longer than this many seconds.", "timeout_s"))
@click.option("--ignore-eos/--stop-at-eos", default=None,
              help="Default: --ignore-eos for a synthetic twin (its text is noise), stop at EOS otherwise.")
@cliopts.format_option(("table", "json"), "table for people; json: load.json's `results`.")
@click.pass_context
def load(ctx, workload, model, binary, engine, out, resume, rates, sweep, concurrency, sync, arrivals, n_requests,
         slots, slo, limit, categories, seed, threads, n_gpu_layers, interval_s, gpu_sampler, idle_timeout_s,
         timeout_s, ignore_eos, fmt):
    """Serve a workload's queries at arrival rates one after another with one llama.cpp server: latency
    percentiles, throughput and goodput under --slo per load point, and the highest rate served within it."""
    from orchestrator import runconfig
    from orchestrator.load import profile
    from orchestrator.load.sweep import LoadSweep, plan
    from orchestrator.measuring import exit_for, measuring
    from orchestrator.report.verdict import parse_slo
    from orchestrator.runprint import progress_echo

    if engine not in (None, "server"):
        raise click.UsageError("edgebench load measures the resident server only: leave out --engine or give "
                               "--engine server")
    if rates and sweep:
        raise click.UsageError("--rates and --sweep both choose the rates: give one of them")
    try:
        rate_list = profile.parse_rates(rates) if rates else None
        conc = [int(c) for c in concurrency.split(",")] if concurrency else []
    except ValueError as exc:
        raise click.UsageError(f"--rates/--concurrency: {exc}") from None
    if any(c < 1 for c in conc):
        raise click.UsageError("--concurrency: each N must be at least 1")
    echo = progress_echo(fmt)
    with measuring("edgebench load --resume {folder}", log=echo) as m:
        if resume:
            job = LoadSweep.resume(resume, log=echo)
            echo(f"resuming {resume}: {len(job.pending())} of {len(job.doc['points'])} load points left")
        else:
            folder = (out or _default_out()).absolute()
            params = dict(ctx.params, engine="server", reports_dir=folder.parent,
                          idle_timeout_s=idle_timeout_s or timeout_s or runconfig.default("timeout_s"))
            cfg = runconfig.from_options(params)
            sweep = sweep or not (rate_list or conc or sync)
            n = n_requests or _n_selected(cfg)
            points = plan(rates=rate_list, sweep=sweep, concurrency=conc, sync=sync, n=n, arrivals=arrivals,
                          seed=cfg.seed)
            job = LoadSweep.create(cfg, folder, points, slots=slots, slo=parse_slo(slo), sweep=sweep,
                                   arrivals=arrivals, log=echo)
        m.measures(job.folder)
        res = job.run()
        _show(res, fmt, job.folder)
        n_failed = sum(p["n_failed"] for p in res["points"])
        exit_for(n_failed, sum(p["n_sent"] for p in res["points"]), "requests")


def _default_out() -> Path:
    from orchestrator import paths
    from orchestrator.store import new_run_id

    return paths.reports_dir() / f"load-{new_run_id()}"


def _n_selected(cfg) -> int:
    from orchestrator.planning import select_queries
    from orchestrator.workloads.schema import load_workload

    return max(1, len(select_queries(load_workload(cfg.workload), cfg.categories, cfg.limit)))


def _show(res: dict, fmt: str, folder: Path) -> None:
    rows = [{"label": p["label"], "n_sent": p["n_sent"], "n_ok": p["n_ok"], "n_met": p["n_met"],
             "slo_attainment": p["slo_attainment"], "ttft_p50_s": p["ttft"]["p50"], "ttft_p90_s": p["ttft"]["p90"],
             "ttft_p99_s": p["ttft"]["p99"], "tbt_p90_s": p["tbt"]["p90"], "tpot_p90_s": p["tpot"]["p90"],
             "e2e_p90_s": p["e2e"]["p90"], "throughput_rps": p["throughput_rps"], "goodput_rps": p["goodput_rps"],
             "send_lag_p99_s": p["send_lag"]["p99"], "client_cpu_per_request_s": p["client_cpu_per_request_s"],
             "energy_per_request_j": p["energy_per_request_j"]} for p in res["points"]]

    def table():
        click.echo(f"{'point':<18} {'ok/sent':>8} {'met':>5} {'TTFT p50/p90/p99 ms':>22} {'TBT p90':>8} "
                   f"{'E2E p90':>8} {'thru/s':>7} {'good/s':>7} {'lag p99':>8}")
        for r in rows:
            click.echo(f"{r['label']:<18} {r['n_ok']:>3}/{r['n_sent']:<4} {r['n_met']:>5} "
                       f"{_ms3(r['ttft_p50_s'], r['ttft_p90_s'], r['ttft_p99_s']):>22} {_ms(r['tbt_p90_s']):>8} "
                       f"{_ms(r['e2e_p90_s']):>8} {_n(r['throughput_rps']):>7} {_n(r['goodput_rps']):>7} "
                       f"{_ms(r['send_lag_p99_s']):>8}")
        k = res["knee"]
        lo, hi = k["interval"]
        click.echo(f"knee: {_n(k['rate'])} requests/s (between {_n(lo)} and {_n(hi)})")
        click.echo(res["answer"])
        click.echo(f"load folder: {folder}  (edgebench report {folder})")

    cliopts.echo_rows(fmt, COLUMNS, rows, doc=res, table=table)


def _ms(v) -> str:
    return "-" if v is None else f"{v * 1000:.0f}"


def _ms3(*vs) -> str:
    return "/".join(_ms(v) for v in vs)


def _n(v) -> str:
    return "-" if v is None else f"{v:.3g}"
