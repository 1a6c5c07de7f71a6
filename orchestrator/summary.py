"""The end-of-run summary: a per-category table on the terminal and a minimal HTML page in
the run folder (Jinja2 with autoescaping: model output is never trusted as markup)."""

from __future__ import annotations

from pathlib import Path

from orchestrator import fields as F
from orchestrator import fsutil, stats
from orchestrator.store import SUMMARY_HTML


def ms(x) -> str:
    """Seconds in milliseconds, one decimal: how every printer of the summary shows a time."""
    return "-" if x is None else f"{x * 1000:.1f}"


def _mb(x):
    return "-" if not x else f"{x / 1e6:.0f}"


def _pct(x):
    return "-" if x is None else f"{x * 100:.1f}%"


def rows_for(records: list[dict]) -> list[dict]:
    from orchestrator.workloads.schema import CATEGORIES

    return stats.by_category(records, CATEGORIES)


def ci_text(d: dict, scale: float = 1000.0, digits: int = 1) -> str:
    """`mean [lo, hi]` as every printer of an interval writes it (the same digits as the page's)."""
    if d.get("mean") is None:
        return "-"
    mean = f"{d['mean'] * scale:.{digits}f}"
    if d.get("ci_lo") is None:
        return mean
    return f"{mean} [{d['ci_lo'] * scale:.{digits}f}, {d['ci_hi'] * scale:.{digits}f}]"


def terminal_table(rows: list[dict]) -> str:
    head = f"{'category':<15}{'n':>4}{'fail':>5}{'TTFT p50':>10}{'p90':>8}  {'TTFT mean [95% CI]':<26}{'TBT p50':>9}" \
           f"{'p90':>8}{'tok/s':>7}{'peak RSS':>10}{'reps':>6}{'rep CV':>8}"
    lines = [head, f"{'':<15}{'':>4}{'':>5}{'(ms)':>10}{'':>8}  {'(ms)':<26}{'(ms)':>9}{'':>8}{'':>7}{'(MB)':>10}"
                   f"{'':>6}{'(total)':>8}"]
    for r in rows:
        tok = r[F.DECODE_TOK_S].get("mean")
        lines.append(
            f"{r[F.CATEGORY]:<15}{r['n']:>4}{r['failures']:>5}{ms(r['ttft'].get('p50')):>10}"
            f"{ms(r['ttft'].get('p90')):>8}  {ci_text(r['ttft']):<26}{ms(r['tbt'].get('p50')):>9}"
            f"{ms(r['tbt'].get('p90')):>8}{'-' if tok is None else f'{tok:.1f}':>7}{_mb(r[F.PEAK_RSS_BYTES]):>10}"
            f"{r['repetitions']:>6}{_pct(r['total_cv']):>8}"
        )
    return "\n".join(lines)


def write_html(store, rows: list[dict], records: list[dict]) -> Path:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("orchestrator", "templates"), autoescape=True, undefined=jinja2.StrictUndefined
    )
    env.filters["ms"] = ms
    env.filters["mb"] = _mb
    env.filters["pct"] = _pct
    html = env.get_template("summary.html").render(
        manifest=store.manifest, rows=rows, records=records
    )
    out = store.dir / SUMMARY_HTML
    fsutil.atomic_write(out, html.encode("utf-8"))
    return out
