"""Sampler CPU cost against recorded input, and the targets of the issue (tegrastats, sysfs)."""

from __future__ import annotations

import sys

from orchestrator.sampling import recorded
from orchestrator.sampling.cost import cpu_pct, sampler_cpu_figures
from orchestrator.sampling.process import ProcessSampler

TARGET_PCT = {"10ms": 10.0, "500ms": 2.0}


def test_cost_figures_for_tegrastats_and_sysfs_meet_the_targets():
    figures = sampler_cpu_figures(seconds_10ms=1.0, seconds_500ms=1.5, samplers=("tegrastats", "sysfs", "jtop"))
    assert set(figures) == {f"sampler_cpu_pct_{n}_{i}" for n in ("tegrastats", "sysfs", "jtop")
                            for i in ("10ms", "500ms")}
    for name in ("tegrastats", "sysfs"):
        for label, target in TARGET_PCT.items():
            value = figures[f"sampler_cpu_pct_{name}_{label}"]
            assert 0 < value <= target, (name, label, value)
    # Sampling 50 times more often costs more: the figure measures the sampler, not noise.
    assert figures["sampler_cpu_pct_sysfs_10ms"] > figures["sampler_cpu_pct_sysfs_500ms"]
    # The recorded Nano is gone afterwards: nothing later in this process samples a board that is not there.
    assert "jtop" not in sys.modules and str(recorded.modules_dir()) not in sys.path


def test_the_process_sampler_is_timed_the_same_way_as_the_gpu_ones():
    """bench's baseline for the GPU samplers' figures: the process sampler's cost on the same child."""
    sampler = ProcessSampler(0.01)
    assert cpu_pct(sampler, 0.5) > 0
    assert sampler._thread is None  # closed: no sampling thread outlives the measurement
