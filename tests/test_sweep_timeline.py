"""The study's Figures 2 and 5 (memory, CPU and GPU use over the category sweep's timeline) and the
TTFT figure's cold-TTFT caption, drawn from folders the real session writes (tests/fakemain.py
stands in for `main`; a sampler at the session's seam stands in for the board)."""

from __future__ import annotations

import json
from dataclasses import replace

import polars as pl
import pytest
from fakemain import FakeMain, fake_binary, write_vocab_model

from orchestrator import stats
from orchestrator.config import RunConfig
from orchestrator.experiments import plans
from orchestrator.experiments import runner as xrun
from orchestrator.report import figures, load
from orchestrator.sampling.base import Sampler
from orchestrator.session import Session

CATS = {"simple": [6, 8], "complex": [30, 40], "conversational": [12]}


class Board(Sampler):
    """Three readings a query: the process's memory and CPU, and the GPU's load and memory when `gpu`."""

    name, kind = "board", "gpu"

    def __init__(self, gpu: bool = True):
        self.gpu = gpu

    def stop(self):
        out = []
        for i, t in enumerate((0.01, 0.03, 0.05)):
            r = {"t_s": t, "dt_s": None if i == 0 else 0.02, "rss_bytes": (100 + 50 * i) * 10**6,
                 "cpu_pct_norm": 0.0 if i == 0 else 90.0}
            if self.gpu:
                r.update(gpu_load_pct=40.0 * i, gpu_mem_proc_bytes=(20 + i) * 10**6)
            out.append(r)
        return out


@pytest.fixture
def cfg(tmp_path):
    wl = tmp_path / "w.jsonl"
    rows = [{"id": f"{c}-{i}", "category": c, "max_tokens": 4, "prompt_tokens_est": n,
             "prompt": " ".join(f"w{j}" for j in range(n))} for c, ns in CATS.items() for i, n in enumerate(ns)]
    wl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return RunConfig(binary=fake_binary(tmp_path / "main"), model=write_vocab_model(tmp_path / "vocab.gguf"),
                     workload=wl, out_dir=tmp_path / "out", idle_window_s=0)


def data(run_dir) -> figures.Data:
    """What report/render.py hands the figures, for a single run folder."""
    src = load.load(run_dir)
    q = load.measured(load.queries_frame(src))
    return figures.Data(q=q, s=load.samples_frame(src), tbt=load.tbt_frame(src), tbt_pos=pl.DataFrame(),
                        kind=src.kind, every=q)


def drawn(run_dir) -> dict[str, figures.Figure]:
    d = data(run_dir)
    return {f.id: f for f in (make(d) for make in (figures.memory_timeline, figures.util_timeline, figures.ttft_box))}


def test_the_category_sweep_is_laid_end_to_end_in_run_order(cfg):
    s = xrun.start(xrun.resolve(plans.load(plans.find("categories")), cfg), samplers=[Board()], executor=FakeMain(),
                   log=lambda m: None)
    recs = s.run().records
    _, readings = figures._sweep_timeline(data(s.store.dir))
    # each reading sits at its time since spawn after the total time of every query run before it
    start = 0.0
    for r in recs:
        mine = readings.filter(pl.col("attempt") == r["attempt"]).sort("t_s")
        assert mine["t_sweep_s"].to_list() == pytest.approx([start + t for t in (0.01, 0.03, 0.05)])
        assert set(mine["category"].to_list()) == {r["category"]}
        start += r["total_s"]
    figs = drawn(s.store.dir)
    for fig_id in ("memory-timeline", "util-timeline"):
        assert figs[fig_id].svg and figs[fig_id].absent is None, fig_id
        assert figures.GET_GPU not in figs[fig_id].caption
    # beside today's per-category bars
    ids = [f.__name__ for f in figures.ALL]
    assert ids.index("memory_timeline") == ids.index("memory_gpu") + 1
    assert ids.index("util_timeline") == ids.index("gpu_util") + 1


def test_a_plain_run_draws_its_own_timeline_and_says_what_gpu_data_is_missing(cfg):
    s = Session.create(cfg, samplers=[Board(gpu=False)], executor=FakeMain(), log=lambda m: None)
    s.run()
    figs = drawn(s.store.dir)
    for fig_id in ("memory-timeline", "util-timeline"):
        assert figs[fig_id].svg, fig_id
        assert figures.GET_GPU in figs[fig_id].caption  # drawn from the CPU side, the GPU's absence said
    # the TTFT figure gives the median TTFT and cold TTFT (model load included) per category
    ok = [r for r in s.store.read_queries() if r["status"] == "ok"]
    cap = figs["ttft-box"].caption
    for cat in CATS:
        mine = [r for r in ok if r["category"] == cat]
        warm = stats.describe([r["ttft_s"] for r in mine], 1e3)["p50"]
        cold = stats.describe([r["cold_ttft_s"] for r in mine], 1e3)["p50"]
        assert f"{cat} {warm:.0f} / {cold:.0f} ms" in cap
    assert "cold TTFT" in cap


def test_a_folder_without_a_category_sweep_says_how_to_get_one(cfg):
    s = xrun.start(xrun.resolve(plans.load(plans.find("matched-pair")), replace(cfg, workload=_pair_workload(cfg))),
                   samplers=[Board()], executor=FakeMain(), log=lambda m: None)
    s.run()
    d = data(s.store.dir)
    for make in (figures.memory_timeline, figures.util_timeline):
        fig = make(d)
        assert fig.svg is None and fig.absent == figures.CATEGORY_SWEEP_HINT
    assert "edgebench experiment categories" in figures.CATEGORY_SWEEP_HINT


def _pair_workload(cfg):
    path = cfg.workload.parent / "pair.jsonl"
    rows = [{"id": f"{c}-0", "category": c, "max_tokens": 4, "prompt_tokens_est": 10, "prompt": "w " * 10}
            for c in ("contextual", "task-oriented")]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_long_sweep_keeps_each_slice_s_peak():
    n = figures.TIMELINE_MAX_POINTS + 1000  # over 4 readings a slice
    df = pl.DataFrame({"category": ["simple"] * n, "attempt": ["a"] * n, "t_sweep_s": [i * 0.01 for i in range(n)],
                       "value": [float(i % 3) for i in range(n)], "series": ["CPU memory (RSS)"] * n})
    thin, thinned = figures._thinned(df)
    assert thinned and thin.height == figures.TIMELINE_BINS
    assert set(thin["value"].to_list()) == {2.0}  # every slice keeps its highest reading
    assert figures._thinned(df.head(100))[1] is False  # a short sweep is drawn reading by reading
