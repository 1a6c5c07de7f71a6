"""The study's figures with plotnine. Each function returns a Figure holding an SVG, or no SVG
and one sentence saying why the data is absent and how to get it: never an empty plot."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import numpy as np
import polars as pl

from orchestrator import fields as F
from orchestrator.experiments import index
from orchestrator.report.analysis import category_order
from orchestrator.report.load import ROLE

GRANULAR_MAX_DT_S = 0.05
# One dot per query stops here (_dots): the page stays a few MB whatever the run's size.
DOTS_MAX = 500
# A box plot switches to a log axis when its largest value is this many times its median.
LOG_AXIS_RATIO = 20
# What a user runs to get the data behind an absent figure.
GET_GPU = ("this run has no GPU sampler readings; run on a board with GPU telemetry (jetson-stats or sysfs: "
           "edgebench bootstrap sets it up) to get them")
GET_GRANULAR = ("no query was sampled finer than 50 ms; run edgebench experiment granular (the median query of "
                "each category every 10 ms), or edgebench run --interval 0.01 --limit 1, to get a granular series")
# Where a GPU sampler ran but cannot read per-process GPU memory: which ones can.
GPU_MEM_SOURCES = ("jetson-stats (jtop) and NVML read it; the sysfs sampler needs root for debugfs nvmap; "
                   "tegrastats never prints it")
# Each names a command that exists: the study's plans are `edgebench experiment NAME` (orchestrator/data/plans/).
EXPERIMENT_HINT = {
    index.OUTPUT_SWEEP: "this folder holds no output-length sweep (one query at several max_tokens); run "
                        "edgebench experiment output-sweep (or experiment all) and render its folder",
    index.PROMPT_SWEEP: "this folder holds no prompt-length sweep; run edgebench experiment prompt-sweep (or "
                        "experiment all) and render its folder",
    index.MATCHED_PAIR: "this folder holds no matched contextual / task-oriented pair; run edgebench experiment "
                        "matched-pair (or experiment all) and render its folder",
}
PALETTE = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]


@dataclass
class Figure:
    id: str
    title: str
    caption: str
    svg: str | None = None
    absent: str | None = None

    @property
    def data_uri(self) -> str:
        # An <img> with a data URI rather than inline <svg>: matplotlib's clip-path ids would collide
        # between inline figures, and the page stays self-contained either way.
        return "data:image/svg+xml;base64," + base64.b64encode(self.svg.encode("utf-8")).decode("ascii")


@dataclass
class Data:
    q: pl.DataFrame  # measured attempts of the per-category statistics (analysis.main_part), every status
    s: pl.DataFrame  # kept sampler readings of every part
    tbt: pl.DataFrame  # one row per token gap
    tbt_pos: pl.DataFrame  # median TBT by category and position
    kind: str = "run"
    every: pl.DataFrame | None = None  # measured attempts of every part (the sweeps and the pair too)
    pair_categories: tuple[str, ...] = ()  # the matched pair's plan order: its difference is first - second

    def of(self, role: str) -> tuple[pl.DataFrame, pl.DataFrame]:
        """The attempts (and their readings) of the part that plays `role`, or of this single
        plan's run when it plays it: empty frames when the folder has no such part."""
        every = self.q if self.every is None else self.every
        return every.filter(pl.col(ROLE) == role), self.s.filter(pl.col(ROLE) == role)

    def granular(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """The granular part's attempts and readings where there is one, else the per-category ones."""
        q, s = self.of(index.GRANULAR)
        return (self.q, self.s) if q.is_empty() else (q, s)


def _pd(df: pl.DataFrame, cat_col: str | None = F.CATEGORY, order: list[str] | None = None):
    import pandas as pd

    frame = pd.DataFrame({c: df[c].to_numpy() for c in df.columns})  # not via Python lists: 500k TBT gaps
    if cat_col and cat_col in frame:
        levels = order or category_order(frame[cat_col].dropna().unique().tolist())
        frame[cat_col] = pd.Categorical(frame[cat_col], categories=levels, ordered=True)
    return frame


def _svg(plot, width: float = 7.5, height: float = 3.6) -> str:
    import matplotlib

    matplotlib.rcParams["svg.hashsalt"] = "edgebench"  # same data, same bytes
    buf = io.BytesIO()
    plot.save(buf, format="svg", width=width, height=height, verbose=False)
    import matplotlib.pyplot as plt

    plt.close("all")
    return buf.getvalue().decode("utf-8")


def _theme():
    import plotnine as p9

    return p9.theme_bw(base_size=9) + p9.theme(legend_position="bottom", figure_size=(7.5, 3.6))


def _has(df: pl.DataFrame, col: str) -> bool:
    return col in df.columns and not df[col].drop_nulls().is_empty()


def _ok(d: Data) -> pl.DataFrame:
    return d.q.filter(pl.col(F.STATUS) == "ok")


def prompt_length(d: Data) -> Figure:
    import plotnine as p9

    f = Figure("prompt-length", "Prompt length per category",
               "Median and mean prompt length in tokens (llama.cpp's count of the prompt it evaluated; the "
               "workload's estimate where the query failed before that).")
    q = d.q
    if F.PROMPT_TOKENS in q.columns or F.PROMPT_TOKENS_EST in q.columns:
        cols = [c for c in (F.PROMPT_TOKENS, F.PROMPT_TOKENS_EST) if c in q.columns]
        q = q.with_columns(pl.coalesce([pl.col(c) for c in cols]).alias("tokens"))
    if not _has(q, "tokens"):
        f.absent = "no query recorded a prompt length; the workload needs prompt_tokens_est or a run that reached main"
        return f
    agg = q.group_by(F.CATEGORY).agg(pl.col("tokens").median().alias("median"), pl.col("tokens").mean().alias("mean"))
    long = agg.unpivot(index=F.CATEGORY, on=["median", "mean"], variable_name="statistic", value_name="tokens")
    plot = (p9.ggplot(_pd(long), p9.aes(F.CATEGORY, "tokens", fill="statistic"))
            + p9.geom_col(position="dodge") + p9.labs(x="", y="prompt tokens", fill="")
            + p9.scale_fill_manual(values=PALETTE) + _theme())
    f.svg = _svg(plot)
    return f


def _mean_bars(df: pl.DataFrame, col: str, scale: float, ylab: str):
    import plotnine as p9

    agg = (df.group_by(F.CATEGORY).agg((pl.col(col).mean() * scale).alias("mean"), (pl.col(col).std() * scale)
                                       .fill_null(0).alias("sd")))
    return (p9.ggplot(_pd(agg), p9.aes(F.CATEGORY, "mean", fill=F.CATEGORY))
            + p9.geom_col(show_legend=False) + p9.geom_errorbar(p9.aes(ymin="mean - sd", ymax="mean + sd"), width=0.3)
            + p9.scale_fill_manual(values=PALETTE) + p9.labs(x="", y=ylab) + _theme())


def memory_rss(d: Data) -> Figure:
    f = Figure("memory-rss", "CPU memory (peak RSS) per category",
               "Mean peak resident memory of the llama.cpp process per query, from zero; the bar is one standard "
               "deviation either side.")
    ok = _ok(d)
    if not _has(ok, F.PEAK_RSS_BYTES):
        f.absent = "no query recorded its peak RSS (the process sampler was off or every query failed)"
        return f
    f.svg = _svg(_mean_bars(ok, F.PEAK_RSS_BYTES, 1e-6, "peak RSS (MB)"))
    return f


def _dots(df: pl.DataFrame, f: Figure) -> pl.DataFrame:
    """At most DOTS_MAX rows, every k-th in the folder's order, for a layer drawing one dot per query:
    each dot is bytes of SVG, and a 10 000-query run made a figure of 7 MB. Statistics drawn beside
    the dots (boxes, means) take every row; the caption says what was left out."""
    if df.height <= DOTS_MAX:
        return df
    k = -(-df.height // DOTS_MAX)
    thin = df.gather_every(k)
    f.caption += f" Of {df.height:,} queries one in {k} is drawn as a dot ({thin.height:,} dots)."
    return thin


def memory_rss_zoom(d: Data) -> Figure:
    import plotnine as p9

    f = Figure("memory-rss-zoom", "CPU memory per category, zoomed",
               "The same peak RSS per query with the axis cut to the data's range, so differences of a few MB "
               "between categories are visible; each dot is one query.")
    ok = _ok(d)
    if not _has(ok, F.PEAK_RSS_BYTES):
        f.absent = "no query recorded its peak RSS (the process sampler was off or every query failed)"
        return f
    df = ok.select(F.CATEGORY, (pl.col(F.PEAK_RSS_BYTES) / 1e6).alias("mb"))
    boxes = _box_stats(df.drop_nulls().rename({"mb": "v"}))
    plot = (p9.ggplot(boxes, p9.aes(F.CATEGORY, colour=F.CATEGORY))
            + p9.geom_boxplot(_box_aes(), stat="identity", width=BOX_WIDTH, outlier_shape="")
            + p9.geom_jitter(p9.aes(y="mb"), data=_pd(_dots(df, f)), width=0.15, height=0, size=1, alpha=0.6)
            + p9.scale_colour_manual(values=PALETTE) + p9.labs(x="", y="peak RSS (MB)")
            + _theme() + p9.theme(legend_position="none"))
    f.svg = _svg(plot)
    return f


# Readings only a GPU/board sampler takes: a sampler that recorded any of them ran on GPU telemetry.
_GPU_SIGNS = (F.GPU_LOAD_PCT, F.GPU_FREQ_MHZ, F.POWER_TOTAL_MW, F.RAM_SHARED_BYTES, F.GPU_MEM_PROC_BYTES)


def gpu_missing(d: Data, what: str, hint: str = "") -> str:
    """Why a GPU reading is absent: no GPU sampler ran (GET_GPU, how to get one), or the one that ran
    does not read `what`; never "no GPU sampler readings" for a run whose GPU sampler recorded data."""
    signs = [pl.col(c).is_not_null() for c in _GPU_SIGNS if c in d.s.columns]
    ran = sorted(set(d.s.filter(pl.any_horizontal(signs))[F.R_SAMPLER].drop_nulls().to_list())) if signs else []
    if not ran:
        return GET_GPU
    return f"the GPU sampler of this run ({', '.join(ran)}) recorded no {what}" + (f" ({hint})" if hint else "")


def memory_gpu(d: Data) -> Figure:
    f = Figure("memory-gpu", "GPU memory per category",
               "Mean peak GPU memory held by the llama.cpp process per query (NvMap on a Jetson, whose GPU shares "
               "the CPU's RAM); the bar is one standard deviation either side.")
    ok = _ok(d)
    if not _has(ok, F.GPU_MEM_PEAK_BYTES):
        f.absent = gpu_missing(d, "GPU memory of the llama.cpp process", GPU_MEM_SOURCES)
        return f
    f.svg = _svg(_mean_bars(ok, F.GPU_MEM_PEAK_BYTES, 1e-6, "GPU memory peak (MB)"))
    return f


def _per_attempt_mean(d: Data, col: str) -> pl.DataFrame:
    ok = _ok(d).select(F.ATTEMPT, F.CATEGORY)
    s = d.s.filter(pl.col(col).is_not_null())
    if col.startswith(F.CPU_PCT) and F.DT_S in s.columns:
        s = s.filter(pl.col(F.DT_S).is_not_null())  # the first reading of a query is 0 by construction
    return s.group_by(F.ATTEMPT).agg(pl.col(col).mean().alias(col)).join(ok, on=F.ATTEMPT)


def cpu_util(d: Data) -> Figure:
    f = Figure("cpu-util", "Average CPU utilisation per category",
               "Mean CPU use of the llama.cpp process over each query (100% = every core busy), averaged per "
               "category; the bar is one standard deviation either side.")
    ok = _ok(d)
    if _has(ok, F.CPU_LIFE_PCT_NORM):
        col, df = F.CPU_LIFE_PCT_NORM, ok.filter(pl.col(F.CPU_LIFE_PCT_NORM).is_not_null())
        f.caption += " Each query's figure is the kernel's count of its CPU time over its life."
    elif _has(d.s, F.CPU_PCT_NORM):  # a folder written before records carried the kernel's figure
        col = F.CPU_PCT_NORM
        df = _per_attempt_mean(d, col)
        f.caption += " Each query's figure is the mean of its process-sampler readings."
    else:
        f.absent = "no process sampler readings of CPU use in this folder; edgebench run records them by default"
        return f
    if df.is_empty():
        f.absent = "no successful query has CPU readings"
        return f
    f.svg = _svg(_mean_bars(df, col, 1.0, "CPU use (% of all cores)"))
    return f


def gpu_util(d: Data) -> Figure:
    f = Figure("gpu-util", "Average GPU utilisation per category",
               "Mean GPU load over each query (the GPU's own busy counter, shared by every process), averaged per "
               "category; the bar is one standard deviation either side.")
    if not _has(d.s, F.GPU_LOAD_PCT):
        f.absent = gpu_missing(d, "GPU load")
        return f
    df = _per_attempt_mean(d, F.GPU_LOAD_PCT)
    if df.is_empty():
        f.absent = "no successful query has GPU load readings"
        return f
    f.svg = _svg(_mean_bars(df, F.GPU_LOAD_PCT, 1.0, "GPU load (%)"))
    return f


# geom_boxplot's box width where its stat computes the boxes (stat_boxplot: 0.75 of a category's slot)
BOX_WIDTH = 0.75


def _box_stats(frame: pl.DataFrame, log: bool = False):
    """One row per category: plotnine's own box statistics (stat_boxplot's weighted_boxplot_stats, 1.5
    IQR whiskers) of its values, computed here rather than by plotnine's stat: half a million token gaps
    pushed through plotnine's per-row pipeline took seconds to become five boxes. On a log axis the
    statistics are those of the log10 values, as plotnine's would be; the box edges are handed back in
    data units for the axis to log again, the outliers in log units as the geom draws them."""
    from plotnine.stats.stat_boxplot import weighted_boxplot_stats

    rows = []
    for (cat,), part in frame.group_by(F.CATEGORY, maintain_order=True):
        y = part["v"].to_numpy()
        res = weighted_boxplot_stats(np.log10(y) if log else y, whis=1.5)
        back = (lambda v: 10.0 ** v) if log else float
        rows.append({F.CATEGORY: cat, "ymin": back(res["whislo"]), "lower": back(res["q1"]),
                     "middle": back(res["med"]), "upper": back(res["q3"]), "ymax": back(res["whishi"]),
                     "outliers": res["fliers"].tolist()})
    boxes = _pd(pl.DataFrame(rows, schema_overrides={"outliers": pl.List(pl.Float64)}))
    boxes["outliers"] = boxes["outliers"].map(list)
    return boxes


def _box_aes(**more):
    """The aesthetics of a geom_boxplot(stat="identity") drawing _box_stats' rows."""
    import plotnine as p9

    return p9.aes(ymin="ymin", lower="lower", middle="middle", upper="upper", ymax="ymax", outliers="outliers",
                  **more)


def _box(df: pl.DataFrame, col: str, ylab: str, scale: float, log: bool = False):
    import plotnine as p9

    frame = df.select(F.CATEGORY, (pl.col(col) * scale).alias("v")).drop_nulls()
    plot = (p9.ggplot(_box_stats(frame, log), _box_aes(x=F.CATEGORY, fill=F.CATEGORY))
            + p9.geom_boxplot(stat="identity", width=BOX_WIDTH, show_legend=False, outlier_size=0.8)
            + p9.scale_fill_manual(values=PALETTE) + p9.labs(x="", y=ylab) + _theme())
    return plot + p9.scale_y_log10() if log else plot


def _wants_log(v: pl.Series) -> float | None:
    """max / median when a log axis is needed, else None. One stall 60 times the median would squash
    every box into a line on a linear axis."""
    med = float(v.median()) if v.len() else 0.0
    if med > 0 and float(v.max()) / med > LOG_AXIS_RATIO and float(v.min()) > 0:
        return float(v.max()) / med
    return None


def faceted_box(df: pl.DataFrame, col: str, ylab: str, scale: float, facet: str, order: list[str]) -> str:
    """_box's figure with one panel per value of `facet` in `order` (the merged report's boards), on a log
    axis by tbt_box's rule: when the largest value is LOG_AXIS_RATIO times the median."""
    import plotnine as p9

    frame = df.select(facet, F.CATEGORY, (pl.col(col) * scale).alias("v")).drop_nulls()
    log = _wants_log(frame["v"]) is not None
    parts = []
    for (value,), part in frame.group_by(facet, maintain_order=True):
        boxes = _box_stats(part.drop(facet), log)
        boxes[facet] = value
        parts.append(boxes)
    import pandas as pd

    boxes = pd.concat(parts, ignore_index=True)  # each part's categories differ: set the study's order again
    boxes[F.CATEGORY] = pd.Categorical(boxes[F.CATEGORY].astype(str),
                                       categories=category_order(boxes[F.CATEGORY].astype(str).unique().tolist()),
                                       ordered=True)
    boxes[facet] = pd.Categorical(boxes[facet], categories=[o for o in order if o in set(boxes[facet])], ordered=True)
    plot = (p9.ggplot(boxes, _box_aes(x=F.CATEGORY, fill=F.CATEGORY))
            + p9.geom_boxplot(stat="identity", width=BOX_WIDTH, show_legend=False, outlier_size=0.8)
            + p9.facet_wrap(f"~{facet}", ncol=min(3, len(parts))) + p9.scale_fill_manual(values=PALETTE)
            + p9.labs(x="", y=ylab) + _theme() + p9.theme(axis_text_x=p9.element_text(rotation=30, ha="right")))
    if log:
        plot += p9.scale_y_log10()
    return _svg(plot, height=3.0 + 2.4 * ((len(parts) - 1) // 3))


def _medians_ms(ok: pl.DataFrame, cols: tuple[str, ...]) -> str:
    """`category a / b ms; ...`: the median of each column per category, through the statistics engine."""
    from orchestrator import stats

    out = []
    for cat in category_order(ok[F.CATEGORY].unique().to_list()):
        sub = ok.filter(pl.col(F.CATEGORY) == cat)
        meds = [stats.describe(sub[c].to_list() if c in sub.columns else [], 1e3)["p50"] for c in cols]
        out.append(f"{cat} " + " / ".join("-" if m is None else f"{m:.0f}" for m in meds) + " ms")
    return "; ".join(out)


def ttft_box(d: Data) -> Figure:
    f = Figure("ttft-box", "Time to first token per category",
               "TTFT (prompt echo to first generated token: prefill plus the first sample) of every successful "
               "query; boxes span the middle half, whiskers 1.5 IQR, dots are outliers.")
    ok = _ok(d)
    if not _has(ok, F.TTFT_S):
        f.absent = "no query produced a first token"
        return f
    f.caption += (" Median TTFT / median cold TTFT (spawn to first token, model load included: what a caller "
                  "who starts main per query waits) per category: " + _medians_ms(ok, (F.TTFT_S, F.COLD_TTFT_S))
                  + ".")
    f.svg = _svg(_box(ok, F.TTFT_S, "TTFT (ms)", 1e3))
    return f


def tbt_box(d: Data) -> Figure:
    f = Figure("tbt-box", "Time between tokens per category",
               "Every gap between two consecutive generated tokens, pooled per category (TTFT is never part of it).")
    if d.tbt.is_empty():
        f.absent = "no query produced two tokens, so there is no gap between tokens to show"
        return f
    spread = _wants_log(d.tbt[F.TBT_S].drop_nulls())
    plot = _box(d.tbt, F.TBT_S, "TBT (ms)", 1e3, spread is not None)
    if spread is not None:
        f.caption += (f" The axis is logarithmic: the longest gap is {spread:.0f} times the median, "
                      "which would flatten the boxes on a linear one.")
    f.svg = _svg(plot)
    return f


def total_vs_prompt(d: Data) -> Figure:
    import plotnine as p9

    f = Figure("total-vs-prompt", "Total time against prompt length",
               "Each dot is one successful query: its total time (spawn to exit, model load included) against "
               "its prompt tokens, coloured by category.")
    ok = _ok(d)
    if not (_has(ok, F.PROMPT_TOKENS) and _has(ok, F.TOTAL_S)):
        f.absent = "no successful query recorded both its prompt tokens and its total time"
        return f
    df = _dots(ok.select(F.CATEGORY, F.PROMPT_TOKENS, F.TOTAL_S).drop_nulls(), f)
    plot = (p9.ggplot(_pd(df), p9.aes(F.PROMPT_TOKENS, F.TOTAL_S, colour=F.CATEGORY)) + p9.geom_point(size=1.5)
            + p9.scale_colour_manual(values=PALETTE) + p9.labs(x="prompt tokens", y="total time (s)", colour="")
            + _theme())
    f.svg = _svg(plot)
    return f


def tbt_position(d: Data) -> Figure:
    import plotnine as p9

    f = Figure("tbt-position", "Time between tokens against token position",
               "Median TBT at each output position per category: a rising line means decoding slows as the KV "
               "cache grows.")
    if d.tbt_pos.is_empty():
        f.absent = "no query produced two tokens, so there is no gap between tokens to show"
        return f
    df = d.tbt_pos.with_columns((pl.col(F.TBT_S) * 1e3).alias("ms"))
    plot = (p9.ggplot(_pd(df), p9.aes("position", "ms", colour=F.CATEGORY)) + p9.geom_line()
            + p9.scale_colour_manual(values=PALETTE) + p9.labs(x="output token position", y="median TBT (ms)",
                                                               colour="") + _theme())
    f.svg = _svg(plot)
    return f


def _attempt_dt(s: pl.DataFrame) -> pl.DataFrame:
    """Median interval between readings of each attempt's process sampler."""
    return (s.filter(pl.col(F.R_SAMPLER) == "process").sort([F.ATTEMPT, F.T_S])
            .with_columns(pl.col(F.T_S).diff().over(F.ATTEMPT).alias("dt"))
            .group_by(F.ATTEMPT).agg(pl.col("dt").median().alias("dt"), pl.len().alias("n")))


def granular_series(d: Data) -> Figure:
    import plotnine as p9

    f = Figure("granular", "CPU and GPU use over one query, per category",
               "For each category, the query sampled at the finest interval (the granular part of an experiment "
               "where there is one): CPU use of the llama.cpp process (100% = every core) and GPU load, against "
               "time since the process started.")
    q, s = d.granular()
    if not _has(s, F.CPU_PCT_NORM):
        f.absent = GET_GRANULAR
        return f
    dt = _attempt_dt(s).filter((pl.col("dt") <= GRANULAR_MAX_DT_S) & (pl.col("n") >= 5))
    # joins that keep the left order and a stable sort: ties go to the first measured on every render
    picked = (q.filter(pl.col(F.STATUS) == "ok").select(F.ATTEMPT, F.CATEGORY)
              .join(dt, on=F.ATTEMPT, maintain_order="left")
              .sort(["dt", "n"], descending=[False, True], maintain_order=True)
              .unique(F.CATEGORY, keep="first", maintain_order=True))
    if picked.is_empty():
        f.absent = GET_GRANULAR
        return f
    s = s.join(picked.select(F.ATTEMPT, F.CATEGORY), on=F.ATTEMPT, maintain_order="left")
    parts = [s.filter(pl.col(F.CPU_PCT_NORM).is_not_null() & pl.col(F.DT_S).is_not_null()
                      if F.DT_S in s.columns else pl.col(F.CPU_PCT_NORM).is_not_null())
             .select(F.CATEGORY, F.T_S, pl.col(F.CPU_PCT_NORM).alias("value"), pl.lit("CPU (% of all cores)")
                     .alias("series"))]
    if _has(s, F.GPU_LOAD_PCT):
        parts.append(s.filter(pl.col(F.GPU_LOAD_PCT).is_not_null())
                     .select(F.CATEGORY, F.T_S, pl.col(F.GPU_LOAD_PCT).alias("value"), pl.lit("GPU load (%)")
                             .alias("series")))
    else:
        f.caption += " GPU load is absent from these queries: " + gpu_missing(d, "GPU load during them") + "."
    df = pl.concat(parts)
    plot = (p9.ggplot(_pd(df), p9.aes(F.T_S, "value", colour="series")) + p9.geom_line(size=0.4)
            + p9.facet_wrap(f"~{F.CATEGORY}", scales="free_x", ncol=3) + p9.scale_colour_manual(values=PALETTE[1:])
            + p9.labs(x="time since spawn (s)", y="%", colour="") + _theme() + p9.theme(figure_size=(7.5, 5)))
    f.svg = _svg(plot, height=5)
    return f


def _memory_long(s: pl.DataFrame, group: str) -> pl.DataFrame:
    """Readings as (group, t_s, mb, memory): the process's RSS, and its GPU memory where read."""
    parts = [s.filter(pl.col(F.RSS_BYTES).is_not_null()).select(
        pl.col(group).cast(pl.Utf8), F.T_S, (pl.col(F.RSS_BYTES) / 1e6).alias("mb"),
        pl.lit("CPU (RSS)").alias("memory"))]
    if _has(s, F.GPU_MEM_PROC_BYTES):
        parts.append(s.filter(pl.col(F.GPU_MEM_PROC_BYTES).is_not_null()).select(
            pl.col(group).cast(pl.Utf8), F.T_S, (pl.col(F.GPU_MEM_PROC_BYTES) / 1e6).alias("mb"),
            pl.lit("GPU").alias("memory")))
    return pl.concat(parts)


def _memory_lines(s: pl.DataFrame, group: str, order: list[str] | None = None):
    import plotnine as p9

    df = _memory_long(s, group)
    frame = _pd(df, cat_col=group, order=order or list(dict.fromkeys(df[group].to_list())))
    return (p9.ggplot(frame, p9.aes(F.T_S, "mb", colour="memory"))
            + p9.geom_line(size=0.5) + p9.facet_wrap(f"~{group}", scales="free_x", ncol=3)
            + p9.scale_colour_manual(values=PALETTE[2:]) + p9.labs(x="time since spawn (s)", y="MB", colour="")
            + _theme() + p9.theme(figure_size=(7.5, 5)))


def _with_readings(s: pl.DataFrame, q: pl.DataFrame, least: int = 3) -> pl.DataFrame:
    """The ok attempts of `q` that have at least `least` memory readings."""
    enough = s.filter(pl.col(F.RSS_BYTES).is_not_null()).group_by(F.ATTEMPT).len().filter(pl.col("len") >= least)
    return q.filter(pl.col(F.STATUS) == "ok").join(enough.select(F.ATTEMPT), on=F.ATTEMPT, maintain_order="left")


def median_length_queries(q: pl.DataFrame) -> pl.DataFrame:
    """Per category, the ok attempt whose prompt length is closest to the category's median prompt
    length (the study's choice for following one query over time); ties go to the first measured."""
    if q.is_empty() or not _has(q, F.PROMPT_TOKENS):
        return q.head(0)
    med = q.group_by(F.CATEGORY).agg(pl.col(F.PROMPT_TOKENS).median().alias("median"))
    sort = [c for c in ("distance", F.REPETITION) if c == "distance" or c in q.columns]
    return (q.join(med, on=F.CATEGORY, maintain_order="left")
            .with_columns((pl.col(F.PROMPT_TOKENS) - pl.col("median")).abs().alias("distance"))
            .sort(sort, maintain_order=True).unique(F.CATEGORY, keep="first", maintain_order=True))


def memory_over_time(d: Data) -> Figure:
    f = Figure("memory-time", "CPU and GPU memory over one query, per category",
               "For each category, the query closest to the category's median prompt length (the granular part's "
               "where there is one): resident memory of the llama.cpp process and its GPU memory against time since "
               "the process started (the climb is the model loading).")
    q, s = d.granular()
    if not _has(s, F.RSS_BYTES):
        f.absent = "no process sampler readings of RSS in this folder"
        return f
    picked = median_length_queries(_with_readings(s, q)).select(F.ATTEMPT, F.CATEGORY)
    if picked.is_empty():
        f.absent = "no successful query has three or more memory readings; sample faster with --interval 0.1"
        return f
    s = s.join(picked, on=F.ATTEMPT, maintain_order="left")
    if not _has(s, F.GPU_MEM_PROC_BYTES):
        f.caption += " GPU memory is absent: " + gpu_missing(d, "per-process GPU memory", GPU_MEM_SOURCES) + "."
    f.svg = _svg(_memory_lines(s, F.CATEGORY, category_order(picked[F.CATEGORY].to_list())), height=5)
    return f


def _memory_sweep(d: Data, fig: Figure, role: str, label) -> Figure:
    """One line per step of a sweep (its first measured ok repetition): the process's memory, and its
    GPU memory where read, against time since spawn."""
    import plotnine as p9

    q, s = d.of(role)
    if q.is_empty():
        fig.absent = EXPERIMENT_HINT[role]
        return fig
    found = label(_with_readings(s, q))
    if found.is_empty():
        fig.absent = "the sweep is here but no successful query of it has three or more memory readings"
        return fig
    s = s.join(found.select(F.ATTEMPT, "label"), on=F.ATTEMPT, maintain_order="left")
    gpu = _has(s, F.GPU_MEM_PROC_BYTES)
    col, what = (F.GPU_MEM_PROC_BYTES, "GPU memory") if gpu else (F.RSS_BYTES, "resident memory (RSS)")
    if not gpu:
        fig.caption += (" No GPU memory was read here, so the process's resident memory is drawn: "
                        + gpu_missing(d, "per-process GPU memory", GPU_MEM_SOURCES) + ".")
    df = s.filter(pl.col(col).is_not_null()).select(pl.col("label").alias("run"), F.T_S, (pl.col(col) / 1e6)
                                                    .alias("mb"))
    order = found["label"].to_list()  # sweep order, not string order
    plot = (p9.ggplot(_pd(df, cat_col="run", order=order), p9.aes(F.T_S, "mb", colour="run")) + p9.geom_line(size=0.5)
            + p9.scale_colour_manual(values=PALETTE) + p9.labs(x="time since spawn (s)", y=f"{what} (MB)", colour="")
            + p9.guides(colour=p9.guide_legend(ncol=2)) + _theme())
    fig.svg = _svg(plot)
    return fig


def _first_of_each(q: pl.DataFrame, key: str) -> pl.DataFrame:
    sort = [key] + ([F.REPETITION] if F.REPETITION in q.columns else [])
    return q.sort(sort, maintain_order=True).unique(key, keep="first", maintain_order=True)


def output_sweep(d: Data) -> Figure:
    f = Figure("output-sweep", "Memory over time, output-length sweep",
               "One query run at each max_tokens of the sweep (first measured repetition of each): GPU memory of "
               "the process against time; longer outputs hold the memory longer.")

    def label(q: pl.DataFrame) -> pl.DataFrame:
        q = _first_of_each(q, F.MAX_TOKENS)
        tokens = (pl.col(F.OUTPUT_TOKENS).cast(pl.Int64).cast(pl.Utf8) if F.OUTPUT_TOKENS in q.columns
                  else pl.lit("?"))
        return q.with_columns(("max_tokens=" + pl.col(F.MAX_TOKENS).cast(pl.Int64).cast(pl.Utf8) + " (" + tokens
                               + " generated)").alias("label"))

    return _memory_sweep(d, f, index.OUTPUT_SWEEP, label)


def prompt_sweep(d: Data) -> Figure:
    f = Figure("prompt-sweep", "Memory over time, prompt-length sweep",
               "Each query of the prompt-length sweep (first measured repetition): GPU memory of the process "
               "against time, labelled by prompt tokens.")

    def label(q: pl.DataFrame) -> pl.DataFrame:
        q = _first_of_each(q, F.QUERY_ID).sort(F.PROMPT_TOKENS)
        return q.with_columns((pl.col(F.QUERY_ID) + " (" + pl.col(F.PROMPT_TOKENS).cast(pl.Int64).cast(pl.Utf8)
                               + " prompt tokens)").alias("label"))

    return _memory_sweep(d, f, index.PROMPT_SWEEP, label)


def pair_total(d: Data) -> Figure:
    import plotnine as p9

    from orchestrator import stats

    f = Figure("pair-total", "Total time of the matched contextual and task-oriented pair",
               "Total time of each measured repetition of the two matched queries (prompts of matched length, "
               "one asked with context to answer from, one as a task to do); the bar is the mean.")
    q, _ = d.of(index.MATCHED_PAIR)
    q = q.filter(pl.col(F.STATUS) == "ok")
    if q.is_empty() or q[F.CATEGORY].n_unique() < 2:
        f.absent = EXPERIMENT_HINT[index.MATCHED_PAIR]
        return f
    present = q[F.CATEGORY].unique().to_list()
    cats = [c for c in d.pair_categories if c in present] or category_order(present)
    sides = [q.filter(pl.col(F.CATEGORY) == c) for c in cats]
    diff = stats.difference(*(side[F.TOTAL_S].drop_nulls().to_list() for side in sides[:2]))
    tokens = ", ".join(f"{c} {'/'.join(str(int(t)) for t in sorted(side[F.OUTPUT_TOKENS].drop_nulls().unique()))}"
                       for c, side in zip(cats, sides, strict=True))
    interval = (f"95% interval {diff['ci_lo']:+.3f} to {diff['ci_hi']:+.3f} s" if diff["ci_lo"] is not None
                else "no interval: a side ran once; repeat the plan for one")
    f.caption += (f" {cats[0]} minus {cats[1]}: {diff['difference']:+.3f} s ({interval}); output tokens: {tokens}.")
    plot = (p9.ggplot(_pd(q.select(F.CATEGORY, F.TOTAL_S)), p9.aes(F.CATEGORY, F.TOTAL_S, fill=F.CATEGORY))
            + p9.stat_summary(fun_y=lambda v: v.mean(), geom="col", show_legend=False)
            + p9.geom_jitter(width=0.1, height=0, size=1.2) + p9.scale_fill_manual(values=PALETTE[3:])
            + p9.labs(x="", y="total time (s)") + _theme())
    f.svg = _svg(plot)
    return f


CATEGORY_SWEEP_HINT = ("this folder holds no category sweep (every query of every category); run edgebench "
                       "experiment categories (or experiment all) and render its folder")


def _sweep_timeline(d: Data) -> tuple[pl.DataFrame, pl.DataFrame] | str:
    """The category sweep's readings laid end to end in run order, as the study drew its Figures 2
    and 5: each reading at its time since its query's spawn plus the total time of the measured
    queries run before it (warm-ups and the gaps between queries left out). From the `categories`
    part, or from the run itself when it is a plain `edgebench run` (no plan). (attempts, readings with
    `t_sweep_s`), or why there are none."""
    q, s = d.of(index.CATEGORIES)
    if q.is_empty():
        if d.kind != "run" or (ROLE in d.q.columns and not d.q[ROLE].drop_nulls().is_empty()):
            return CATEGORY_SWEEP_HINT
        q, s = d.q, d.s
    if not _has(q, F.TOTAL_S):
        return "no query of the category sweep recorded its total time"
    total = pl.col(F.TOTAL_S).fill_null(0.0)
    q = q.filter(pl.col(F.ATTEMPT).is_not_null()).with_columns((total.cum_sum() - total).alias("start"))
    s = (s.join(q.select(F.ATTEMPT, F.CATEGORY, "start", F.TOTAL_S), on=F.ATTEMPT, maintain_order="left")
         .filter((pl.col(F.T_S) >= 0) & (pl.col(F.T_S) <= pl.col(F.TOTAL_S).fill_null(float("inf"))))
         .with_columns((pl.col("start") + pl.col(F.T_S)).alias("t_sweep_s")))
    return q, s


def _series(s: pl.DataFrame, col: str, label: str, scale: float = 1.0) -> pl.DataFrame:
    return s.filter(pl.col(col).is_not_null()).select(
        F.CATEGORY, F.ATTEMPT, "t_sweep_s", (pl.col(col) * scale).alias("value"), pl.lit(label).alias("series"))


# Above this many readings in one series a timeline draws, per category, the highest reading of each
# of TIMELINE_BINS equal slices of the sweep: a page 7.5 inches wide shows no more, and a long sweep's
# every reading would make the figure slow to draw and heavy to load. Peaks survive; the caption says so.
# Each point is about 1 kB of the page (SVG, then base64): at 1500 slices the two timelines of a
# 10 000-query run weighed 5.7 MB, more than the rest of the page; 600 keep it a few MB.
TIMELINE_MAX_POINTS = 2000
TIMELINE_BINS = 600


def _thinned(df: pl.DataFrame) -> tuple[pl.DataFrame, bool]:
    if df.group_by("series").len()["len"].max() <= TIMELINE_MAX_POINTS:
        return df, False
    lo = df["t_sweep_s"].min()
    width = (df["t_sweep_s"].max() - lo) / TIMELINE_BINS or 1.0
    # the last reading falls on the far edge: it belongs to the last slice, not to one of its own
    slice_ = ((pl.col("t_sweep_s") - lo) / width).floor().clip(upper_bound=TIMELINE_BINS - 1)
    binned = (df.with_columns(slice_.alias("bin"))
              .group_by("series", F.CATEGORY, "bin")
              .agg(pl.col("t_sweep_s").min(), pl.col("value").max(), pl.col(F.ATTEMPT).first()))
    return binned.drop("bin"), True


def _timeline_plot(df: pl.DataFrame, ylab: str):
    import plotnine as p9

    # One line per category through its queries in run order (the sawtooth of each query's load is the
    # study's picture); points too, so a query seen by one reading still shows.
    frame = _pd(df.sort("t_sweep_s"))
    return (p9.ggplot(frame, p9.aes("t_sweep_s", "value", colour=F.CATEGORY))
            + p9.geom_line(size=0.3) + p9.geom_point(size=0.5) + p9.facet_wrap("~series", ncol=1, scales="free_y")
            + p9.scale_colour_manual(values=PALETTE)
            + p9.labs(x="time into the category sweep (s, queries end to end in run order)", y=ylab, colour="")
            + _theme() + p9.theme(figure_size=(7.5, 5)))


_SWEEP_ORDER = ("the queries laid end to end in the order they ran (each at its time since spawn after the total "
                "time of those before it; warm-ups and the gaps between queries left out), coloured by category.")


def _timeline_figure(d: Data, f: Figure, series, what: str, ylab: str, gpu_col: str, gpu_what: str) -> Figure:
    """`series(readings)` gives the frames to draw (`_series`); the figure says why when there are none,
    and names the GPU side it lacks."""
    got = _sweep_timeline(d)
    if isinstance(got, str):
        f.absent = got
        return f
    q, s = got
    parts = [p for p in series(q, s) if not p.is_empty()]
    if not parts:
        f.absent = f"no {what} reading of the category sweep's queries (was every query a failure?)"
        return f
    if not _has(s, gpu_col):
        f.caption += f" {gpu_what} is absent: " + gpu_missing(d, gpu_what) + "."
    df, thinned = _thinned(pl.concat(parts))
    if thinned:
        f.caption += (f" The sweep has more than {TIMELINE_MAX_POINTS} readings a series: each point is the highest "
                      f"reading of one of {TIMELINE_BINS} equal slices of it.")
    f.svg = _svg(_timeline_plot(df, ylab), height=5)
    return f


def memory_timeline(d: Data) -> Figure:
    f = Figure("memory-timeline", "CPU and GPU memory over the category sweep",
               "The study's Figure 2: resident memory of the llama.cpp process (and its GPU memory where read) at "
               "each reading of the category sweep, " + _SWEEP_ORDER)

    def series(_q: pl.DataFrame, s: pl.DataFrame) -> list[pl.DataFrame]:
        return [_series(s, col, label, 1e-6) for col, label in ((F.RSS_BYTES, "CPU memory (RSS)"),
                                                                (F.GPU_MEM_PROC_BYTES, "GPU memory")) if _has(s, col)]

    return _timeline_figure(d, f, series, "memory", "MB", F.GPU_MEM_PROC_BYTES, "GPU memory")


CPU_SERIES = "CPU (% of all cores)"


def _life_points(q: pl.DataFrame, cpu: pl.DataFrame | None) -> pl.DataFrame | None:
    """A query that ended before the sampler's second reading has no CPU reading; the kernel's count over
    its life (`cpu_life_pct_norm`) stands in for it, one point at its end, so a sweep of short queries
    still draws."""
    if not _has(q, F.CPU_LIFE_PCT_NORM):
        return None
    seen = cpu[F.ATTEMPT].unique() if cpu is not None else pl.Series([], dtype=pl.String)
    return (q.filter(pl.col(F.CPU_LIFE_PCT_NORM).is_not_null() & ~pl.col(F.ATTEMPT).is_in(seen.implode()))
            .select(F.CATEGORY, F.ATTEMPT, (pl.col("start") + pl.col(F.TOTAL_S)).alias("t_sweep_s"),
                    pl.col(F.CPU_LIFE_PCT_NORM).cast(pl.Float64).alias("value"), pl.lit(CPU_SERIES).alias("series")))


def util_timeline(d: Data) -> Figure:
    f = Figure("util-timeline", "CPU and GPU utilisation over the category sweep",
               "The study's Figure 5: CPU use of the llama.cpp process (100% = every core) and GPU load at each "
               "reading of the category sweep, " + _SWEEP_ORDER + " A query that ended before the sampler's "
               "second reading is one CPU point at its end: its CPU time over its life.")

    def series(q: pl.DataFrame, s: pl.DataFrame) -> list[pl.DataFrame]:
        out = []
        cpu = s.filter(pl.col(F.DT_S).is_not_null()) if F.DT_S in s.columns else s  # a first reading reads 0
        cpu = _series(cpu, F.CPU_PCT_NORM, CPU_SERIES) if _has(cpu, F.CPU_PCT_NORM) else None
        got = [x for x in (cpu, _life_points(q, cpu)) if x is not None and not x.is_empty()]
        if got:
            out.append(pl.concat(got, how="vertical_relaxed"))
        if _has(s, F.GPU_LOAD_PCT):
            out.append(_series(s, F.GPU_LOAD_PCT, "GPU load (%)"))
        return out

    return _timeline_figure(d, f, series, "CPU or GPU load", "%", F.GPU_LOAD_PCT, "GPU load")


# The timelines sit beside the per-category bars they extend (memory-rss, cpu-util, gpu-util).
ALL = [prompt_length, memory_rss, memory_rss_zoom, memory_gpu, memory_timeline, cpu_util, gpu_util, util_timeline,
       ttft_box, tbt_box, total_vs_prompt, tbt_position, granular_series, memory_over_time, output_sweep,
       prompt_sweep, pair_total]


def all_figures(d: Data) -> list[Figure]:
    """Every figure; one whose data this folder cannot give says why instead of ending the page."""
    out = []
    for make in ALL:
        try:
            out.append(make(d))
        except Exception as exc:  # noqa: BLE001 - a damaged folder loses one figure, never the whole report
            name = make.__name__.replace("_", " ")
            out.append(Figure(make.__name__, name, "", absent=f"this folder's data could not be drawn "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}); "
                              "the other figures and tables are unaffected"))
    return out
