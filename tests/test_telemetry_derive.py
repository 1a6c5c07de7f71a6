"""Per-query GPU/board figures against a hand computation of a known trace."""

from __future__ import annotations

import pytest

from orchestrator.sampling.derive import derive, integrate_mw

# t_s, total mW, GPU rail mW, GPU load %, GPU MHz, GPU temp
TRACE = [
    (0.0, 1000, 0, 0.0, 76.8, 41.0),
    (0.5, 3000, 1000, 50.0, 614.4, 43.0),
    (1.0, 5000, 2000, 99.0, 921.6, 47.5),
    (1.5, 4000, 1500, 99.0, 614.4, 52.0),
    (2.0, 1000, 0, 0.0, 76.8, 60.0),  # after the child exited: outside the query window
]
TIMELINE = {"t_echo_s": 0.4, "t_first_token_s": 0.9, "t_last_token_s": 1.6, "t_exit_s": 1.9, "output_tokens": 10,
            "kernel_peak_rss_bytes": 1 << 20, "n_gpu_layers": None}


def samples() -> list[dict]:
    out = [{"t_s": t, "power_total_mw": p, "power_pom_5v_in_mw": p, "power_pom_5v_gpu_mw": g,
            "power_pom_5v_gpu_avg_mw": 7,
            "gpu_load_pct": load, "gpu_freq_mhz": mhz, "gpu_freq_max_mhz": 921.6, "temp_gpu_c": temp,
            "temp_pmic_c": 100.0, "gpu_mem_proc_bytes": int(t * 100) << 20, "ram_shared_bytes": 500 << 20}
           for t, p, g, load, mhz, temp in TRACE]
    # An experiment discarded this reading: marked, kept in the file, left out of the figures.
    out.insert(3, {"t_s": 1.2, "power_total_mw": 100000, "gpu_load_pct": 0.0, "discard": True})
    return out


def test_energy_is_the_trapezoid_of_power_over_the_whole_query_with_the_edges_held():
    fig = derive(samples(), TIMELINE)
    # between the readings: (0.5 * (1000+3000)/2 + 0.5 * (3000+5000)/2 + 0.5 * (5000+4000)/2) mJ = 5250 mJ;
    # the first reading is at the spawn (nothing to hold back), the last (1.5 s, 4000 mW) is held to the
    # exit at 1.9 s: + 0.4 * 4000 = 1600 mJ
    assert fig["energy_j"] == pytest.approx(6.85)
    assert fig["energy_window_s"] == pytest.approx(1.5)
    assert fig["energy_coverage"] == pytest.approx(round(1.5 / 1.9, 4))
    assert fig["energy_coverage_low"] is True  # 79% of the query between readings
    assert fig["energy_per_token_j"] == pytest.approx(0.685)
    # GPU rail: 0.5*500 + 0.5*1500 + 0.5*1750 = 1875 mJ, + 0.4 * 1500 held = 2475 mJ; the avg column is no rail.
    assert fig["energy_pom_5v_gpu_j"] == pytest.approx(2.475)
    assert fig["energy_pom_5v_in_j"] == pytest.approx(6.85)
    assert "energy_pom_5v_gpu_avg_j" not in fig
    # no idle power measured: no net figure
    assert fig["energy_net_j"] is None and fig["energy_net_per_token_j"] is None and fig["idle_power_mw"] is None


def power(*readings) -> list[dict]:
    return [{"t_s": t, "power_total_mw": mw} for t, mw in readings]


def test_a_late_first_reading_is_held_back_to_the_spawn_and_idle_power_gives_the_net():
    timeline = {**TIMELINE, "t_exit_s": 1.0, "idle_power_mw": 1000.0}
    fig = derive(power((0.3, 2000), (0.8, 4000)), timeline)
    # held back: 0.3 s * 2000 mW = 600 mJ; between: 0.5 * 3000 = 1500 mJ; held on: 0.2 * 4000 = 800 mJ
    assert fig["energy_j"] == pytest.approx(2.9)
    assert (fig["energy_window_s"], fig["energy_coverage"], fig["energy_coverage_low"]) == (0.5, 0.5, True)
    # net of 1 W idle over the 1.0 s query: 2.9 - 1.0 = 1.9 J, over 10 tokens
    assert fig["energy_net_j"] == pytest.approx(1.9) and fig["energy_net_per_token_j"] == pytest.approx(0.19)
    assert fig["idle_power_mw"] == 1000.0


def test_one_reading_is_held_over_the_query_and_coverage_of_90_percent_is_not_low():
    one = derive(power((0.4, 3000)), {**TIMELINE, "t_exit_s": 2.0})
    assert one["energy_j"] == pytest.approx(6.0) and one["energy_coverage"] == 0.0 and one["energy_coverage_low"]
    dense = derive(power(*[(0.05 + 0.1 * i, 1000) for i in range(10)]), {**TIMELINE, "t_exit_s": 1.0})
    assert dense["energy_j"] == pytest.approx(1.0)  # 1 W over 1 s, whatever the edges
    assert dense["energy_coverage"] == pytest.approx(0.9) and dense["energy_coverage_low"] is False
    # readings after the exit are not the query's
    late = derive(power((0.5, 1000), (3.0, 9000)), {**TIMELINE, "t_exit_s": 1.0})
    assert late["energy_j"] == pytest.approx(1.0)


def test_gpu_load_is_split_at_the_first_token():
    fig = derive(samples(), TIMELINE)
    prefill = [fig[f"gpu_load_prefill_{k}"] for k in ("mean_pct", "peak_pct", "n")]
    decode = [fig[f"gpu_load_decode_{k}"] for k in ("mean_pct", "peak_pct", "n")]
    assert prefill == [50.0, 50.0, 1] and decode == [99.0, 99.0, 2]


def test_peaks_and_temperature():
    fig = derive(samples(), TIMELINE)
    assert fig["gpu_mem_peak_bytes"] == 150 << 20
    assert fig["gpu_shared_mem_peak_bytes"] == 500 << 20
    assert fig["temp_peak_c"] == 52.0  # not PMIC's constant 100, not the reading after exit
    # One loaded reading at 614 of 921.6 MHz (t=1.5) is a clock ramp, not a cap.
    assert fig["throttled"] is False
    assert "rss_note" not in fig


def clocks(*readings) -> list[dict]:
    return [{"t_s": t, "gpu_load_pct": load, "gpu_freq_mhz": mhz, "gpu_freq_max_mhz": 921.6}
            for t, load, mhz in readings]


def test_throttled_needs_a_quarter_second_loaded_below_the_top_clock():
    capped = clocks((0.0, 99, 921.6), (0.1, 99, 614.4), (0.2, 98, 614.4), (0.4, 99, 614.4))
    assert derive(capped, TIMELINE)["throttled"] is True
    ramp = clocks((0.0, 99, 76.8), (0.01, 99, 614.4), (0.02, 99, 921.6), (0.3, 99, 921.6))
    assert derive(ramp, TIMELINE)["throttled"] is False
    idle_low_clock = clocks((0.0, 10, 76.8), (0.5, 10, 76.8))  # no load: a low clock is the governor's choice
    assert derive(idle_low_clock, TIMELINE)["throttled"] is False
    broken_run = clocks((0.0, 99, 614.4), (0.2, 99, 921.6), (0.4, 99, 614.4))
    assert derive(broken_run, TIMELINE)["throttled"] is False
    assert derive([{"t_s": 0.5, "gpu_load_pct": 99.0}], TIMELINE)["throttled"] is None


def test_no_readings_give_none_not_zero():
    fig = derive([], {**TIMELINE, "n_gpu_layers": 4, "idle_power_mw": 900.0})
    assert fig["energy_j"] is None and fig["energy_per_token_j"] is None and fig["gpu_load_decode_mean_pct"] is None
    assert fig["energy_coverage"] is None and fig["energy_coverage_low"] is None and fig["energy_net_j"] is None
    assert fig["gpu_load_prefill_n"] == 0
    assert "RSS" in fig["rss_note"]


def test_a_failed_query_without_timeline_still_integrates_energy():
    fig = derive(samples(), {"t_echo_s": None, "t_first_token_s": None, "t_last_token_s": None, "t_exit_s": None,
                             "output_tokens": 0})
    assert fig["energy_j"] == pytest.approx((5250 + 0.5 * (4000 + 1000) / 2) / 1000)
    assert fig["energy_per_token_j"] is None and fig["gpu_load_prefill_n"] == 0
    # without an exit time there is no whole query to cover or to take idle power over
    assert fig["energy_coverage"] is None and fig["energy_net_j"] is None


def test_integrate_needs_two_readings_or_an_end_to_hold_one_to():
    assert integrate_mw([{"t_s": 0.0, "p_mw": 5}], "p_mw") == (None, 0.0)
    assert integrate_mw([{"t_s": 0.5, "p_mw": 4000}], "p_mw", 2.0) == (8.0, 0.0)
