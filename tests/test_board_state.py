"""Board state at run start/finish on a simulated Nano: power mode, clock caps, warnings with fixes."""

from __future__ import annotations

from pathlib import Path

from orchestrator.board import UNAVAILABLE, board_warnings, read_board_state
from orchestrator.sampling.recorded import NanoSysfs


def cpufreq(root: Path, cap_khz: int, floor_khz: int = 102000, offline: tuple = ()) -> None:
    for n in range(4):
        cpu = root / f"sys/devices/system/cpu/cpu{n}"
        (cpu / "cpufreq").mkdir(parents=True, exist_ok=True)
        (cpu / "online").write_text("0\n" if n in offline else "1\n")
        for name, value in (("scaling_governor", "schedutil"), ("scaling_cur_freq", str(cap_khz)),
                            ("cpuinfo_max_freq", "1479000"), ("scaling_max_freq", str(cap_khz)),
                            ("scaling_min_freq", str(floor_khz))):
            (cpu / "cpufreq" / name).write_text(value + "\n")


def test_5w_mode_with_capped_clocks_warns_with_both_fixes(nano):
    (nano.sysroot / "proc/meminfo").write_text("MemTotal: 4059712 kB\nSwapTotal: 2029852 kB\nSwapFree: 2019852 kB\n")
    cpufreq(nano.sysroot, cap_khz=918000, offline=(2, 3))
    NanoSysfs(nano.sysroot)
    (nano.sysroot / "sys/class/devfreq/57000000.gpu/max_freq").write_text("640000000\n")
    (nano.sysroot / "sys/class/devfreq/57000000.gpu/available_frequencies").write_text(
        "76800000 153600000 640000000 921600000\n")
    state = read_board_state()
    assert state["nvpmodel"] == {"mode": "5W", "id": 1}
    assert [c["online"] for c in state["cpu"]] == [True, True, False, False]
    assert state["cpu"][0]["cap_mhz"] == 918.0 and state["cpu"][0]["max_mhz"] == 1479.0
    assert state["gpu_clock"]["max_mhz"] == 640.0 and state["gpu_clock"]["available_max_mhz"] == 921.6
    assert state["throttled"] is True
    assert state["jetson_clocks"] is False
    assert state["thermal_c"]["gpu"] == 41.0 and "pmic_die" in state["thermal_c"]
    assert state["swap_used_bytes"] == 10000 * 1024
    assert state["packages"]["click"] != "not installed" and state["packages"]["jetson-stats"] == "not installed"
    warnings = board_warnings(state)
    assert len(warnings) == 2
    assert "power mode 5W (id 1) is not the maximum" in warnings[0] and "edgebench bootstrap --max-power" in warnings[0]
    assert "cpu0 capped at 918 of 1479 MHz" in warnings[1] and "GPU capped at 640 of 921.6 MHz" in warnings[1]
    assert warnings[1].endswith("fix: sudo jetson_clocks")


def test_maxn_with_jetson_clocks_gives_no_warning(nano):
    (nano.sysroot / "state/nvpmodel").write_text("0\n")
    cpufreq(nano.sysroot, cap_khz=1479000, floor_khz=1479000)
    NanoSysfs(nano.sysroot)
    (nano.sysroot / "sys/class/devfreq/57000000.gpu/min_freq").write_text("921600000\n")
    state = read_board_state()
    assert state["nvpmodel"] == {"mode": "MAXN", "id": 0}
    assert state["jetson_clocks"] is True and state["throttled"] is False
    assert board_warnings(state) == []


def test_a_bare_machine_reads_unavailable_and_never_raises(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_SYSROOT", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path / "nobin"))
    state = read_board_state()
    for key in ("nvpmodel", "jetson_clocks", "cpu", "gpu_clock", "emc_clock", "thermal_c", "swap_used_bytes",
                "throttled"):
        assert state[key] == UNAVAILABLE, key
    assert board_warnings(state) == []
