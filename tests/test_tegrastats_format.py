"""tegrastats lines of every format -> the same flat fields; `edgebench telemetry parse-tegrastats`."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.sampling import recorded
from orchestrator.sampling.tegrastats_format import parse_line

DATA = recorded.tegrastats_lines().parent
MB = 1 << 20


def lines(name: str) -> list[str]:
    return (DATA / name).read_text().splitlines()


def test_nano_without_root_has_loads_but_no_gpu_clock():
    s = parse_line(lines("nano_user.txt")[0])
    assert s["ram_used_bytes"] == 613 * MB and s["ram_total_bytes"] == 3964 * MB
    assert s["gpu_load_pct"] == 0 and "gpu_freq_mhz" not in s
    assert s["emc_load_pct"] == 0 and "emc_freq_mhz" not in s
    assert [s[f"cpu{i}_freq_mhz"] for i in range(4)] == [102] * 4
    assert s["temp_cpu_c"] == 40.5 and s["temp_thermal_c"] == 41.0
    assert (s["power_pom_5v_in_mw"], s["power_pom_5v_gpu_mw"], s["power_pom_5v_cpu_mw"]) == (943, 0, 123)
    assert s["power_total_mw"] == 943  # the input rail, not the sum of the three
    assert "unparsed" not in s


def test_nano_with_root_has_clocks_offline_cores_and_engines():
    s = parse_line(lines("nano_root.txt")[1])
    assert (s["gpu_load_pct"], s["gpu_freq_mhz"]) == (97, 921)
    assert (s["emc_load_pct"], s["emc_freq_mhz"]) == (41, 1600)
    assert s["cpu2_online"] is False and "cpu2_load_pct" not in s and s["cpu1_load_pct"] == 97
    assert s["iram_total_bytes"] == 252 * 1024 and s["swap_used_bytes"] == 12 * MB
    assert s["nvenc_freq_mhz"] == 716 and s["ape_freq_mhz"] == 25
    assert (s["power_pom_5v_in_mw"], s["power_pom_5v_in_avg_mw"]) == (6112, 4133)


def test_orin_jetpack5_timestamp_gpc_clocks_mw_units_and_offline_sensors():
    s = parse_line(lines("orin_jp5.txt")[1])
    assert s["timestamp"] == "08-01-2023 10:26:36"
    assert (s["gpu_load_pct"], s["gpu_freq_mhz"], s["gpu_gpc1_freq_mhz"]) == (94, 1300, 1300)
    assert s["vic_freq_mhz"] == 729
    assert s["temp_cv0_c"] is None and s["temp_gpu_c"] == 46.281 and s["temp_tj_c"] == 47.5
    # No input rail on an AGX Orin: the total is the sum, as jetson-stats computes it.
    assert s["power_total_mw"] == 9974 + 2371 + 4816 + 1207
    assert s["power_vdd_gpu_soc_avg_mw"] == 6173


def test_orin_jetpack6_lowercase_temperatures_and_input_rail():
    idle, busy = (parse_line(x) for x in lines("orin_jp6.txt"))
    assert idle["gpu_load_pct"] == 0 and "gpu_freq_mhz" not in idle and "emc_load_pct" not in idle
    assert busy["gpu_freq_mhz"] == 611 and busy["temp_soc2_c"] == 45.5 and busy["temp_gpu_c"] == 48.875
    assert busy["power_total_mw"] == busy["power_vdd_in_mw"] == 11204
    assert busy["nvdec_online"] is False and busy["cpu5_online"] is False


def test_rails_in_another_order_read_the_same():
    reordered = parse_line(lines("rails_reordered.txt")[0])
    plain = parse_line(lines("nano_user.txt")[1])
    for key in ("power_pom_5v_in_mw", "power_pom_5v_gpu_mw", "power_pom_5v_cpu_mw", "power_total_mw", "temp_gpu_c"):
        assert reordered[key] == plain[key], key


def test_unknown_fields_are_kept_raw():
    s = parse_line(lines("nano_user.txt")[0] + " MTS fg 0% bg 3% FOO@bar")
    assert s["unparsed"] == "MTS fg 0% bg 3% FOO@bar"
    assert s["power_total_mw"] == 943


@pytest.mark.parametrize("line, reason", [
    ("RAM 613/3964MB (lfb 634x4MB) SWAP 0/1982MB (cached 0MB) CPU [2%@10", "not closed"),
    ("tegrastats: interval must be positive", "not a tegrastats line"),
    ("RAM 613/3964MB (lfb 634x4MB) CPU [2%@102,x] GR3D_FREQ 0%", "CPU core 1"),
])
def test_malformed_lines_say_why(line, reason):
    with pytest.raises(ValueError, match=reason):
        parse_line(line)


def test_cli_parses_every_recorded_format_to_json_lines(tmp_path):
    runner = CliRunner()
    for name in ("nano_user.txt", "nano_root.txt", "orin_jp5.txt", "orin_jp6.txt", "rails_reordered.txt"):
        res = runner.invoke(main, ["telemetry", "parse-tegrastats", str(DATA / name)])
        assert res.exit_code == 0, res.output
        rows = [json.loads(x) for x in res.stdout.splitlines()]
        assert len(rows) == len(lines(name))
        assert all("gpu_load_pct" in r and "ram_used_bytes" in r for r in rows)


def test_cli_reports_malformed_lines_by_number_and_keeps_going():
    res = CliRunner().invoke(main, ["telemetry", "parse-tegrastats", str(DATA / "malformed.txt")])
    assert res.exit_code == 3
    rows = [json.loads(x) for x in res.stdout.splitlines()]
    assert [r["gpu_load_pct"] for r in rows] == [0, 5]
    errors = res.stderr.splitlines()
    assert errors[0].startswith(f"{DATA / 'malformed.txt'}:2: ") and "not closed" in errors[0]
    assert errors[1].startswith(f"{DATA / 'malformed.txt'}:3: ")
    assert "2 of 4 lines malformed" in errors[-1]


def test_cli_reads_stdin():
    res = CliRunner().invoke(main, ["telemetry", "parse-tegrastats"], input="\n".join(lines("orin_jp6.txt")) + "\n")
    assert res.exit_code == 0
    assert [json.loads(x)["power_total_mw"] for x in res.stdout.splitlines()] == [5704, 11204]
