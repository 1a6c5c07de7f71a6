"""The study's figures with plotnine. Each function returns a Figure holding an SVG, or no SVG
and one sentence saying why the data is absent and how to get it: never an empty plot."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import polars as pl

from orchestrator.report.analysis import category_order

GRANULAR_MAX_DT_S = 0.05
# What a user runs to get the data behind an absent figure.
GET_GPU = ("this run has no GPU sampler readings; run on a board with GPU telemetry (jetson-stats or sysfs: "
           "edgebench bootstrap sets it up) to get them")
GET_GRANULAR = ("no query was sampled finer than 50 ms; run a few queries with edgebench run --interval 0.01 "
                "--limit 1 to get a granular series")
EXPERIMENT_HINT = {
    "output": "this folder holds no output-length sweep (one query at several max_tokens); run the output-sweep "
              "experiment (edgebench experiment output-sweep) and render its folder",
    "prompt": "this folder holds no prompt-length sweep; run the prompt-sweep experiment "
              "(edgebench experiment prompt-sweep) and render its folder",
    "pair": "this folder holds no matched contextual / task-oriented pair; run the pair experiment "
            "(edgebench experiment pair) and render its folder",
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
    q: pl.DataFrame  # measured attempts, every status
    s: pl.DataFrame  # kept sampler readings
    tbt: pl.DataFrame  # one row per token gap
    tbt_pos: pl.DataFrame  # median TBT by category and position
    plan: str = ""
    kind: str = "run"


def _pd(df: pl.DataFrame, cat_col: str | None = "category", order: list[str] | None = None):
    import pandas as pd

    frame = pd.DataFrame(df.to_dict(as_series=False))
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
    return d.q.filter(pl.col("status") == "ok")


def prompt_length(d: Data) -> Figure:
    import plotnine as p9

    f = Figure("prompt-length", "Prompt length per category",
               "Median and mean prompt length in tokens (llama.cpp's count of the prompt it evaluated; the "
               "workload's estimate where the query failed before that).")
    q = d.q
    if "prompt_tokens" in q.columns or "prompt_tokens_est" in q.columns:
        cols = [c for c in ("prompt_tokens", "prompt_tokens_est") if c in q.columns]
        q = q.with_columns(pl.coalesce([pl.col(c) for c in cols]).alias("tokens"))
    if not _has(q, "tokens"):
        f.absent = "no query recorded a prompt length; the workload needs prompt_tokens_est or a run that reached main"
        return f
    agg = q.group_by("category").agg(pl.col("tokens").median().alias("median"), pl.col("tokens").mean().alias("mean"))
    long = agg.unpivot(index="category", on=["median", "mean"], variable_name="statistic", value_name="tokens")
    plot = (p9.ggplot(_pd(long), p9.aes("category", "tokens", fill="statistic"))
            + p9.geom_col(position="dodge") + p9.labs(x="", y="prompt tokens", fill="")
            + p9.scale_fill_manual(values=PALETTE) + _theme())
    f.svg = _svg(plot)
    return f


def _mean_bars(df: pl.DataFrame, col: str, scale: float, ylab: str):
    import plotnine as p9

    agg = (df.group_by("category").agg((pl.col(col).mean() * scale).alias("mean"), (pl.col(col).std() * scale)
                                       .fill_null(0).alias("sd")))
    return (p9.ggplot(_pd(agg), p9.aes("category", "mean", fill="category"))
            + p9.geom_col(show_legend=False) + p9.geom_errorbar(p9.aes(ymin="mean - sd", ymax="mean + sd"), width=0.3)
            + p9.scale_fill_manual(values=PALETTE) + p9.labs(x="", y=ylab) + _theme())


def memory_rss(d: Data) -> Figure:
    f = Figure("memory-rss", "CPU memory (peak RSS) per category",
               "Mean peak resident memory of the llama.cpp process per query, from zero; the bar is one standard "
               "deviation either side.")
    ok = _ok(d)
    if not _has(ok, "peak_rss_bytes"):
        f.absent = "no query recorded its peak RSS (the process sampler was off or every query failed)"
        return f
    f.svg = _svg(_mean_bars(ok, "peak_rss_bytes", 1e-6, "peak RSS (MB)"))
    return f


def memory_rss_zoom(d: Data) -> Figure:
    import plotnine as p9

    f = Figure("memory-rss-zoom", "CPU memory per category, zoomed",
               "The same peak RSS per query with the axis cut to the data's range, so differences of a few MB "
               "between categories are visible; each dot is one query.")
    ok = _ok(d)
    if not _has(ok, "peak_rss_bytes"):
        f.absent = "no query recorded its peak RSS (the process sampler was off or every query failed)"
        return f
    df = ok.select("category", (pl.col("peak_rss_bytes") / 1e6).alias("mb"))
    plot = (p9.ggplot(_pd(df), p9.aes("category", "mb", colour="category"))
            + p9.geom_boxplot(outlier_shape="") + p9.geom_jitter(width=0.15, height=0, size=1, alpha=0.6)
            + p9.scale_colour_manual(values=PALETTE) + p9.labs(x="", y="peak RSS (MB)")
            + _theme() + p9.theme(legend_position="none"))
    f.svg = _svg(plot)
    return f


def memory_gpu(d: Data) -> Figure:
    f = Figure("memory-gpu", "GPU memory per category",
               "Mean peak GPU memory held by the llama.cpp process per query (NvMap on a Jetson, whose GPU shares "
               "the CPU's RAM); the bar is one standard deviation either side.")
    ok = _ok(d)
    if not _has(ok, "gpu_mem_peak_bytes"):
        f.absent = GET_GPU
        return f
    f.svg = _svg(_mean_bars(ok, "gpu_mem_peak_bytes", 1e-6, "GPU memory peak (MB)"))
    return f


def _per_attempt_mean(d: Data, col: str) -> pl.DataFrame:
    ok = _ok(d).select("attempt", "category")
    s = d.s.filter(pl.col(col).is_not_null())
    if col.startswith("cpu_pct") and "dt_s" in s.columns:
        s = s.filter(pl.col("dt_s").is_not_null())  # the first reading of a query is 0 by construction
    return s.group_by("attempt").agg(pl.col(col).mean().alias(col)).join(ok, on="attempt")


def cpu_util(d: Data) -> Figure:
    f = Figure("cpu-util", "Average CPU utilisation per category",
               "Mean CPU use of the llama.cpp process over each query (100% = every core busy), averaged per "
               "category; the bar is one standard deviation either side.")
    col = "cpu_pct_norm" if _has(d.s, "cpu_pct_norm") else None
    if not col:
        f.absent = "no process sampler readings of CPU use in this folder; edgebench run records them by default"
        return f
    df = _per_attempt_mean(d, col)
    if df.is_empty():
        f.absent = "no successful query has CPU readings"
        return f
    f.svg = _svg(_mean_bars(df, col, 1.0, "CPU use (% of all cores)"))
    return f


def gpu_util(d: Data) -> Figure:
    f = Figure("gpu-util", "Average GPU utilisation per category",
               "Mean GPU load over each query (the GPU's own busy counter, shared by every process), averaged per "
               "category; the bar is one standard deviation either side.")
    if not _has(d.s, "gpu_load_pct"):
        f.absent = GET_GPU
        return f
    df = _per_attempt_mean(d, "gpu_load_pct")
    if df.is_empty():
        f.absent = "no successful query has GPU load readings"
        return f
    f.svg = _svg(_mean_bars(df, "gpu_load_pct", 1.0, "GPU load (%)"))
    return f


def _box(df: pl.DataFrame, col: str, ylab: str, scale: float):
    import plotnine as p9

    frame = df.select("category", (pl.col(col) * scale).alias("v")).drop_nulls()
    return (p9.ggplot(_pd(frame), p9.aes("category", "v", fill="category"))
            + p9.geom_boxplot(show_legend=False, outlier_size=0.8) + p9.scale_fill_manual(values=PALETTE)
            + p9.labs(x="", y=ylab) + _theme())


def ttft_box(d: Data) -> Figure:
    f = Figure("ttft-box", "Time to first token per category",
               "TTFT (prompt echo to first generated token: prefill plus the first sample) of every successful "
               "query; boxes span the middle half, whiskers 1.5 IQR, dots are outliers.")
    ok = _ok(d)
    if not _has(ok, "ttft_s"):
        f.absent = "no query produced a first token"
        return f
    f.svg = _svg(_box(ok, "ttft_s", "TTFT (ms)", 1e3))
    return f


def tbt_box(d: Data) -> Figure:
    f = Figure("tbt-box", "Time between tokens per category",
               "Every gap between two consecutive generated tokens, pooled per category (TTFT is never part of it).")
    if d.tbt.is_empty():
        f.absent = "no query produced two tokens, so there is no gap between tokens to show"
        return f
    f.svg = _svg(_box(d.tbt, "tbt_s", "TBT (ms)", 1e3))
    return f


def total_vs_prompt(d: Data) -> Figure:
    import plotnine as p9

    f = Figure("total-vs-prompt", "Total time against prompt length",
               "Each dot is one successful query: its total time (spawn to exit, model load included) against "
               "its prompt tokens, coloured by category.")
    ok = _ok(d)
    if not (_has(ok, "prompt_tokens") and _has(ok, "total_s")):
        f.absent = "no successful query recorded both its prompt tokens and its total time"
        return f
    df = ok.select("category", "prompt_tokens", "total_s").drop_nulls()
    plot = (p9.ggplot(_pd(df), p9.aes("prompt_tokens", "total_s", colour="category")) + p9.geom_point(size=1.5)
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
    df = d.tbt_pos.with_columns((pl.col("tbt_s") * 1e3).alias("ms"))
    plot = (p9.ggplot(_pd(df), p9.aes("position", "ms", colour="category")) + p9.geom_line()
            + p9.scale_colour_manual(values=PALETTE) + p9.labs(x="output token position", y="median TBT (ms)",
                                                               colour="") + _theme())
    f.svg = _svg(plot)
    return f


def _attempt_dt(s: pl.DataFrame) -> pl.DataFrame:
    """Median interval between readings of each attempt's process sampler."""
    return (s.filter(pl.col("sampler") == "process").sort(["attempt", "t_s"])
            .with_columns(pl.col("t_s").diff().over("attempt").alias("dt"))
            .group_by("attempt").agg(pl.col("dt").median().alias("dt"), pl.len().alias("n")))


def granular_series(d: Data) -> Figure:
    import plotnine as p9

    f = Figure("granular", "CPU and GPU use over one query, per category",
               "For each category, the query sampled at the finest interval: CPU use of the llama.cpp process "
               "(100% = every core) and GPU load, against time since the process started.")
    if not _has(d.s, "cpu_pct_norm"):
        f.absent = GET_GRANULAR
        return f
    dt = _attempt_dt(d.s).filter((pl.col("dt") <= GRANULAR_MAX_DT_S) & (pl.col("n") >= 5))
    picked = (_ok(d).select("attempt", "category").join(dt, on="attempt").sort(["dt", "n"], descending=[False, True])
              .unique("category", keep="first", maintain_order=True))
    if picked.is_empty():
        f.absent = GET_GRANULAR
        return f
    s = d.s.join(picked.select("attempt", "category"), on="attempt")
    parts = [s.filter(pl.col("cpu_pct_norm").is_not_null() & pl.col("dt_s").is_not_null()
                      if "dt_s" in s.columns else pl.col("cpu_pct_norm").is_not_null())
             .select("category", "t_s", pl.col("cpu_pct_norm").alias("value"), pl.lit("CPU (% of all cores)")
                     .alias("series"))]
    if _has(s, "gpu_load_pct"):
        parts.append(s.filter(pl.col("gpu_load_pct").is_not_null())
                     .select("category", "t_s", pl.col("gpu_load_pct").alias("value"), pl.lit("GPU load (%)")
                             .alias("series")))
    else:
        f.caption += " GPU load is absent from these queries: " + GET_GPU + "."
    df = pl.concat(parts)
    plot = (p9.ggplot(_pd(df), p9.aes("t_s", "value", colour="series")) + p9.geom_line(size=0.4)
            + p9.facet_wrap("~category", scales="free_x", ncol=3) + p9.scale_colour_manual(values=PALETTE[1:])
            + p9.labs(x="time since spawn (s)", y="%", colour="") + _theme() + p9.theme(figure_size=(7.5, 5)))
    f.svg = _svg(plot, height=5)
    return f


def _memory_lines(s: pl.DataFrame, group: str):
    import plotnine as p9

    parts = [s.filter(pl.col("rss_bytes").is_not_null()).select(group, "t_s", (pl.col("rss_bytes") / 1e6)
                                                                .alias("mb"), pl.lit("CPU (RSS)").alias("memory"))]
    if _has(s, "gpu_mem_bytes"):
        parts.append(s.filter(pl.col("gpu_mem_bytes").is_not_null()).select(
            group, "t_s", (pl.col("gpu_mem_bytes") / 1e6).alias("mb"), pl.lit("GPU").alias("memory")))
    return (p9.ggplot(_pd(pl.concat(parts), cat_col=None), p9.aes("t_s", "mb", colour="memory"))
            + p9.geom_line(size=0.5) + p9.facet_wrap(f"~{group}", scales="free_x", ncol=3)
            + p9.scale_colour_manual(values=PALETTE[2:]) + p9.labs(x="time since spawn (s)", y="MB", colour="")
            + _theme() + p9.theme(figure_size=(7.5, 5)))


def memory_over_time(d: Data) -> Figure:
    f = Figure("memory-time", "CPU and GPU memory over single queries",
               "For each category, its longest successful query: resident memory of the llama.cpp process and its "
               "GPU memory against time since the process started (the climb is the model loading).")
    if not _has(d.s, "rss_bytes"):
        f.absent = "no process sampler readings of RSS in this folder"
        return f
    ok = _ok(d)
    if not _has(ok, "total_s"):
        f.absent = "no successful query to follow over time"
        return f
    with_samples = d.s.filter(pl.col("rss_bytes").is_not_null()).group_by("attempt").len().filter(pl.col("len") >= 3)
    picked = (ok.join(with_samples.select("attempt"), on="attempt").sort("total_s", descending=True)
              .unique("category", keep="first", maintain_order=True).select("attempt", "category"))
    if picked.is_empty():
        f.absent = "no successful query has three or more memory readings; sample faster with --interval 0.1"
        return f
    if not _has(d.s.join(picked, on="attempt"), "gpu_mem_bytes"):
        f.caption += " GPU memory is absent: " + GET_GPU + "."
    f.svg = _svg(_memory_lines(d.s.join(picked, on="attempt"), "category"), height=5)
    return f


def _gpu_memory_sweep(d: Data, fig: Figure, label_col: str, which: str, found: pl.DataFrame) -> Figure:
    import plotnine as p9

    if found.is_empty():
        fig.absent = EXPERIMENT_HINT[which]
        return fig
    s = d.s.join(found.select("attempt", label_col), on="attempt")
    if not _has(s, "gpu_mem_bytes"):
        fig.absent = "the sweep is here but has no GPU memory readings: " + GET_GPU
        return fig
    df = s.filter(pl.col("gpu_mem_bytes").is_not_null()).select(
        pl.col(label_col).cast(pl.Utf8).alias("run"), "t_s", (pl.col("gpu_mem_bytes") / 1e6).alias("mb"))
    order = list(dict.fromkeys(found[label_col].cast(pl.Utf8).to_list()))  # sweep order, not string order
    plot = (p9.ggplot(_pd(df, cat_col="run", order=order), p9.aes("t_s", "mb", colour="run")) + p9.geom_line(size=0.5)
            + p9.scale_colour_manual(values=PALETTE) + p9.labs(x="time since spawn (s)", y="GPU memory (MB)", colour="")
            + _theme())
    fig.svg = _svg(plot)
    return fig


def output_sweep(d: Data) -> Figure:
    f = Figure("output-sweep", "GPU memory over time, output-length sweep",
               "One query run at each max_tokens of the sweep (first measured repetition of each): GPU memory of "
               "the process against time; longer outputs hold the memory longer.")
    q = _ok(d)
    if "variant_id" in q.columns and "max_tokens" in q.columns:
        q = q.filter(pl.col("variant_id").fill_null("").str.contains("max_tokens"))
        if q["max_tokens"].n_unique() >= 2:
            q = q.sort(["max_tokens", "repetition"] if "repetition" in q.columns else ["max_tokens"]).unique(
                "max_tokens", keep="first", maintain_order=True)
            q = q.with_columns(("max_tokens=" + pl.col("max_tokens").cast(pl.Int64).cast(pl.Utf8)).alias("label"))
            return _gpu_memory_sweep(d, f, "label", "output", q)
    return _gpu_memory_sweep(d, f, "label", "output", pl.DataFrame())


def prompt_sweep(d: Data) -> Figure:
    f = Figure("prompt-sweep", "GPU memory over time, prompt-length sweep",
               "Each query of the prompt-length sweep (first measured repetition): GPU memory of the process "
               "against time, labelled by prompt tokens.")
    q = _ok(d)
    if "prompt" in d.plan and "prompt_tokens" in q.columns:
        q = q.sort("prompt_tokens").unique("query_id", keep="first", maintain_order=True)
        q = q.with_columns((pl.col("query_id") + " (" + pl.col("prompt_tokens").cast(pl.Int64).cast(pl.Utf8)
                            + " tokens)").alias("label"))
        return _gpu_memory_sweep(d, f, "label", "prompt", q)
    return _gpu_memory_sweep(d, f, "label", "prompt", pl.DataFrame())


def pair_total(d: Data) -> Figure:
    import plotnine as p9

    f = Figure("pair-total", "Total time of the matched contextual and task-oriented pair",
               "Total time of each repetition of the two matched queries (same content, asked as context to "
               "answer from and as a task to do); the bar is the mean.")
    q = _ok(d).filter(pl.col("category").is_in(["contextual", "task-oriented"]))
    if "pair" not in d.plan or q.is_empty() or q["category"].n_unique() < 2:
        f.absent = EXPERIMENT_HINT["pair"]
        return f
    plot = (p9.ggplot(_pd(q.select("category", "total_s")), p9.aes("category", "total_s", fill="category"))
            + p9.stat_summary(fun_y=lambda v: v.mean(), geom="col", show_legend=False)
            + p9.geom_jitter(width=0.1, height=0, size=1.2) + p9.scale_fill_manual(values=PALETTE[3:])
            + p9.labs(x="", y="total time (s)") + _theme())
    f.svg = _svg(plot)
    return f


ALL = [prompt_length, memory_rss, memory_rss_zoom, memory_gpu, cpu_util, gpu_util, ttft_box, tbt_box,
       total_vs_prompt, tbt_position, granular_series, memory_over_time, output_sweep, prompt_sweep, pair_total]


def all_figures(d: Data) -> list[Figure]:
    return [make(d) for make in ALL]
