"""`edgebench bench` end to end on the small twin: every figure is measured through the run
session, printed against its target with a baseline from the same run."""

from __future__ import annotations

from orchestrator.bench import ENGINE_FIGURES, SAMPLER_TARGETS, TARGETS, measure
from orchestrator.config import RunConfig
from orchestrator.runfacts import default_workload


def test_every_figure_has_a_value_a_target_and_a_baseline_from_the_same_run(tmp_path, llama_bin_dir, tiny_model):
    cfg = RunConfig(binary=llama_bin_dir / "main", model=tiny_model, workload=default_workload(),
                    out_dir=tmp_path, threads=1)
    result = measure(cfg, 1, tmp_path, log=lambda s: None)
    figures = result["figures"]
    assert set(TARGETS) <= set(figures)
    # a33e6a0's server is built beside main: its fidelity is measured too, against main's targets
    assert {f"server_{f}" for f in ENGINE_FIGURES} <= set(figures)
    assert all(figures[f"server_{f}"]["target"] == TARGETS[f] for f in ENGINE_FIGURES)
    samplers = {k for k in figures if k.startswith("sampler_cpu_pct_")}
    assert {f"sampler_cpu_pct_{n}_{i}" for n in ("tegrastats", "sysfs", "jtop") for i in SAMPLER_TARGETS} == samplers
    for name, f in figures.items():
        assert f["value"] is not None and f["value"] >= 0, name
        assert f["baseline"]["value"] is not None and f["command"] == "make bench", name
        assert f["ok"] == (f["value"] <= f["target"]), name
    assert len(result["overhead_pairs"]["bare_s"]) == len(result["overhead_pairs"]["through_s"]) == 3
    assert figures["harness_rss_bytes"]["value"] > 10e6  # a real `edgebench run` process was measured
