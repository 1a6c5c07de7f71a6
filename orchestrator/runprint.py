"""What a measuring command prints: a line (or a progress bar) per query, and the end summary
(the per-category table, or with --format one JSON object, CSV or Markdown rows; docs/cli.md).
run, experiment and batch share it; with a machine format, progress goes to stderr so stdout
holds the summary alone."""

from __future__ import annotations

import functools
import sys

import click

from orchestrator import fields as F
from orchestrator.cliopts import echo_rows

# the flat columns of a category row (--format csv|md): seconds and bytes, as the records say
COLUMNS = ["category", "n", "failures", "ttft_p50_s", "ttft_p90_s", "ttft_mean_s", "ttft_ci_lo_s", "ttft_ci_hi_s",
           "tbt_p50_s", "tbt_p90_s", "decode_tok_s_mean", "peak_rss_bytes", "repetitions", "total_cv"]


def progress_echo(fmt: str):
    """Where progress lines go: stdout for the table, stderr when stdout carries a machine format."""
    return click.echo if fmt == "table" else functools.partial(click.echo, err=True)


def line_for(record: dict, i: int, total: int) -> str:
    tag = "" if record.get("phase", "measure") == "measure" else f" ({record['phase']})"
    rep = f" #{record['repetition'] + 1}" if record.get("repetition") else ""
    head = f"[{i}/{total}] {record['query_id']}{rep}{tag}"
    if record["status"] != "ok":
        return f"{head} {record['status']}: {record.get('error')}"
    v = record.get("validation", {})
    return (f"{head} ok ttft={record.get('ttft_s', 0) * 1000:.0f}ms "
            f"tpot={(record.get('tpot_s') or 0) * 1000:.1f}ms out={record.get('output_tokens')} "
            f"rss={(record.get('peak_rss_bytes') or 0) / 1e6:.0f}MB{'' if v.get('ok') else ' VALIDATION-FLAGGED'}")


def run_with_progress(session, echo=click.echo) -> object:
    """A progress bar with ETA on a terminal; one line per query under cron."""
    todo = len(session.pending())
    if sys.stdout.isatty() and echo is click.echo:
        with click.progressbar(length=todo, label="queries", show_eta=True, show_pos=True,
                               item_show_func=lambda r: r and r["query_id"]) as bar:
            def report(rec, i, total):
                bar.update(1, rec)
                if rec["status"] != "ok":
                    click.echo("\n" + line_for(rec, i, total))
            return session.run(report)
    return session.run(lambda r, i, n: echo(line_for(r, i, n)))


def flat_row(r: dict) -> dict:
    ttft, tbt = r["ttft"], r["tbt"]
    return {"category": r[F.CATEGORY], "n": r["n"], "failures": r["failures"], "ttft_p50_s": ttft.get("p50"),
            "ttft_p90_s": ttft.get("p90"), "ttft_mean_s": ttft.get("mean"), "ttft_ci_lo_s": ttft.get("ci_lo"),
            "ttft_ci_hi_s": ttft.get("ci_hi"), "tbt_p50_s": tbt.get("p50"), "tbt_p90_s": tbt.get("p90"),
            "decode_tok_s_mean": r[F.DECODE_TOK_S].get("mean"), "peak_rss_bytes": r[F.PEAK_RSS_BYTES],
            "repetitions": r["repetitions"], "total_cv": r["total_cv"]}


def summary(session, result, extra: dict | None = None) -> tuple[str, dict]:
    """Write the run's summary page; (the per-category table, the one JSON object `--format json`
    prints: docs/cli.md)."""
    from orchestrator import summary as page

    rows = page.rows_for(result.records)
    html = page.write_html(session.store, rows, result.records)
    doc = {"run_dir": str(session.store.dir), "summary_html": str(html), "records": len(result.records),
           "failed": result.n_failed, "exit_code": result.exit_code, "categories": [flat_row(r) for r in rows],
           **(extra or {})}
    table = (f"\n{page.terminal_table(rows)}\n\nreport: {html}\n"
             f"figures, CSV and Parquet: {report_hint(session.store.dir)}")
    return table, doc


def show(session, result, fmt: str = "table", extra: dict | None = None) -> None:
    """The per-category table and the summary page (or the summary as `fmt`)."""
    table, doc = summary(session, result, extra)
    echo_rows(fmt, COLUMNS, doc["categories"], doc=doc, table=lambda: click.echo(table))


def report_hint(run_dir) -> str:
    """The report command for this run as it can be typed here (after `make run`, edgebench is in
    .venv/bin, not on PATH), preceded by the install of the report extra when it is missing."""
    import shlex

    from orchestrator import extras

    render = f"{extras.self_command()} report {shlex.quote(str(run_dir))}"
    return f"{extras.install_command('report')}, then {render}" if extras.missing("report") else render


def _fmt(c: dict, scale=1000.0, unit="ms") -> str:
    if c["mean"] is None:
        return "-"
    if c["ci_half"] is None:
        return f"{c['mean'] * scale:.1f}{unit}"
    return f"{c['mean'] * scale:.1f}±{c['ci_half'] * scale:.1f}{unit}"


def show_results(res: dict, echo=click.echo) -> None:
    """An experiment's 95% intervals when an item was repeated, and a matched pair's comparison."""
    rows = [r for r in res["ci95"] if r["n"] > 1]
    if rows:
        echo("\n95% confidence intervals (t-distribution) over the measured repetitions:")
        for r in rows:
            vid = f" [{r['variant_id']}]" if r["variant_id"] else ""
            echo(f"  {r['query_id']}{vid} n={r['n']} ttft={_fmt(r['ttft_s'])} tpot={_fmt(r['tpot_s'])} "
                 f"total={_fmt(r['total_s'], 1, 's')}")
    cmp_ = res.get("compare")
    if cmp_:
        key = cmp_["figure"]
        sides = " vs ".join(f"{s['category']} {s['query_id']} ({s['prompt_tokens']} prompt tokens, "
                            f"{'/'.join(map(str, s.get('output_tokens') or ['-']))} output tokens) "
                            f"{_fmt(s[key], 1, 's')}" for s in cmp_["sides"])
        echo(f"\nmatched pair, {key}: {sides}")
        if cmp_["difference"] is not None:
            ci = (f" (95% CI {cmp_['ci_lo']:+.3f} to {cmp_['ci_hi']:+.3f} s)" if cmp_["ci_lo"] is not None
                  else " (no interval: a side ran once)")
            echo(f"  difference {cmp_['difference']:+.3f} s{ci}, ratio {cmp_['ratio']:.3f}")
