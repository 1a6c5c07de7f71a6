"""`edgebench load`: the resident server under arrival-rate load (docs/load.md); parse options, then
measure under orchestrator.measuring and print each load point's figures and the knee."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator import cliopts, exitcodes
from orchestrator.cliopts import run_default
from orchestrator.load import format as lf  # not `fmt`: that is the --format option here
from orchestrator.sampling.autodetect import GPU_SAMPLERS

_DIR = click.Path(path_type=Path, file_okay=False)
# the table's columns: a point's figures as they are, and a percentile of a distribution as <name>_<pNN>_s
COPIED = (lf.LABEL, lf.N_SENT, lf.N_OK, lf.N_MET, lf.SLO_ATTAINMENT)
PERCENTILES = ((lf.TTFT, lf.P50), (lf.TTFT, lf.P90), (lf.TTFT, lf.P99), (lf.TBT, lf.P90), (lf.TPOT, lf.P90),
               (lf.E2E, lf.P90))
RATES = (lf.THROUGHPUT_RPS, lf.GOODPUT_RPS)
LAG = (lf.SEND_LAG, lf.P99)
PER_REQUEST = (lf.CLIENT_CPU_PER_REQUEST_S, lf.ENERGY_PER_REQUEST_J)


def column(metric: str, pct: str) -> str:
    return f"{metric}_{pct}_s"


COLUMNS = [*COPIED, *(column(*mp) for mp in PERCENTILES), *RATES, column(*LAG), *PER_REQUEST]


@click.command(cls=cliopts.Command, epilog=exitcodes.HELP)
@cliopts.target_options(engines=("server",))
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
    from orchestrator.runprint import progress_echo
    from orchestrator.slo import parse_slo

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
            echo(f"resuming {resume}: {len(job.pending())} of {len(job.doc[lf.PLAN])} load points left")
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
        pts = res[lf.RESULT_POINTS]
        exit_for(sum(p[lf.N_FAILED] for p in pts), sum(p[lf.N_SENT] for p in pts), "requests")


def _default_out() -> Path:
    from orchestrator import paths
    from orchestrator.store import new_run_id

    return paths.reports_dir() / f"load-{new_run_id()}"


def _n_selected(cfg) -> int:
    from orchestrator.planning import select_queries
    from orchestrator.workloads.schema import load_workload

    return max(1, len(select_queries(load_workload(cfg.workload), cfg.categories, cfg.limit)))


def _show(res: dict, fmt: str, folder: Path) -> None:
    rows = [{**{k: p[k] for k in COPIED}, **{column(m, q): p[m][q] for m, q in PERCENTILES},
             **{k: p[k] for k in RATES}, column(*LAG): p[LAG[0]][LAG[1]], **{k: p[k] for k in PER_REQUEST}}
            for p in res[lf.RESULT_POINTS]]

    def table():
        click.echo(f"{'point':<18} {'ok/sent':>8} {'met':>5} {'TTFT p50/p90/p99 ms':>22} {'TBT p90':>8} "
                   f"{'E2E p90':>8} {'thru/s':>7} {'good/s':>7} {'lag p99':>8}")
        for r in rows:
            ttft = [r[column(lf.TTFT, q)] for q in (lf.P50, lf.P90, lf.P99)]
            click.echo(f"{r[lf.LABEL]:<18} {r[lf.N_OK]:>3}/{r[lf.N_SENT]:<4} {r[lf.N_MET]:>5} "
                       f"{_ms3(*ttft):>22} {_ms(r[column(lf.TBT, lf.P90)]):>8} "
                       f"{_ms(r[column(lf.E2E, lf.P90)]):>8} {_n(r[lf.THROUGHPUT_RPS]):>7} "
                       f"{_n(r[lf.GOODPUT_RPS]):>7} {_ms(r[column(*LAG)]):>8}")
        k = res[lf.KNEE]
        lo, hi = k[lf.INTERVAL]
        click.echo(f"knee: {_n(k[lf.RATE])} requests/s (between {_n(lo)} and {_n(hi)})")
        click.echo(res[lf.ANSWER])
        click.echo(f"load folder: {folder}  (edgebench report {folder})")

    cliopts.echo_rows(fmt, COLUMNS, rows, doc=res, table=table)


def _ms(v) -> str:
    return "-" if v is None else f"{v * 1000:.0f}"


def _ms3(*vs) -> str:
    return "/".join(_ms(v) for v in vs)


def _n(v) -> str:
    return "-" if v is None else f"{v:.3g}"
