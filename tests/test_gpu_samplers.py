"""GPU/board samplers against fake boards: sysfs tree, tegrastats program, jtop module, NVML module."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fakes.sysfs_tree import OrinSysfs
from waiting import wait_for

from orchestrator.sampling import recorded
from orchestrator.sampling.jtop import JtopSampler
from orchestrator.sampling.nvml import NvmlSampler
from orchestrator.sampling.recorded import MAX_FREQ_HZ, NANO_FRAMES, NanoSysfs, TraceWriter
from orchestrator.sampling.sysfs import SysfsSampler, parse_nvmap_clients
from orchestrator.sampling.tegrastats import TegrastatsSampler

NVMAP = ("CLIENT                        PROCESS      PID        SIZE\n"
         "user                             main    {pid}     204800K\n"
         "user                     Xorg       999      10240K\n"
         "total                                          215040K\n")


@pytest.fixture
def thread_errors(monkeypatch) -> list:
    errors: list = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))
    return errors


def sleeper(seconds: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"])


def watch_until(sampler, done) -> list[dict]:
    """A query that lasts until `done(sampler)` holds, however slowly a loaded machine gets there;
    then its readings."""
    child = sleeper(600)
    try:
        sampler.start(child.pid, time.perf_counter_ns())
        assert wait_for(lambda: done(sampler))
        return sampler.stop()
    finally:
        child.kill()
        child.wait()


def test_sysfs_reads_load_clock_rails_temps_and_times_the_load_refresh(tmp_path, thread_errors):
    board = NanoSysfs(tmp_path)
    writer = TraceWriter(board, NANO_FRAMES, period_s=0.05)
    sampler = SysfsSampler(interval_s=0.01, root=tmp_path)

    def seen_enough(s) -> bool:  # both busy loads read, and enough load changes for a median
        return {50.0, 99.0} <= {x.get("gpu_load_pct") for x in list(s._samples)} and len(s._load_gaps_ns) >= 10

    try:
        sampler.open()
        samples = watch_until(sampler, seen_enough)
    finally:
        writer.close()
        sampler.close()
    assert thread_errors == []
    assert len(samples) == sampler.info()["n_samples"] >= 2
    loads = {s["gpu_load_pct"] for s in samples if "gpu_load_pct" in s}
    assert loads <= {0.0, 50.0, 99.0} and {50.0, 99.0} <= loads
    s = next(x for x in samples if x.get("gpu_load_pct") == 99.0 and "power_pom_5v_in_mw" in x)
    assert s["gpu_freq_max_mhz"] == MAX_FREQ_HZ / 1e6
    # Files are rewritten one by one, so one reading may straddle two frames (as on a board).
    assert s["power_total_mw"] == s["power_pom_5v_in_mw"] in {f["rails"]["POM_5V_IN"] for f in NANO_FRAMES}
    assert s["temp_pmic_die_c"] == 100.0
    assert s["temp_gpu_c"] in {f["temps_milli"]["GPU-therm"] / 1000 for f in NANO_FRAMES}
    info = sampler.info()
    assert info["name"] == "sysfs" and info["kind"] == "gpu" and info["interval_s"] == 0.01
    # deadlines on the 10 ms grid, a late tick skipped rather than caught up: never faster than asked
    assert info["achieved_interval_s"] >= 0.009
    assert info["cpu_time_s"] > 0
    # The fake driver rewrites `load` 50 ms or more apart: the refresh timed is the driver's, not the
    # sampler's 10 ms (how much slower a busy machine makes the driver is no test)
    assert info["load_refresh_s"] >= 0.04, info
    assert any("nvmap" in w for w in info["warnings"])
    assert info["rails"] == ["POM_5V_CPU", "POM_5V_GPU", "POM_5V_IN"]


def test_sysfs_per_process_gpu_memory_from_nvmap_and_orin_hwmon_rails(tmp_path):
    board = OrinSysfs(tmp_path)
    clients = board.root / "sys/kernel/debug/nvmap/iovmm/clients"
    clients.parent.mkdir(parents=True)
    child = sleeper(600)
    clients.write_text(NVMAP.format(pid=child.pid))
    sampler = SysfsSampler(interval_s=0.05, root=tmp_path)
    sampler.open()
    try:
        sampler.start(child.pid, time.perf_counter_ns())
        assert wait_for(lambda: sampler._samples)  # a query that lasts until its first reading
        samples = sampler.stop()
    finally:
        child.kill()
        child.wait()
        sampler.close()
    s = samples[0]
    assert s["gpu_mem_proc_bytes"] == 204800 * 1024 and s["ram_shared_bytes"] == 215040 * 1024
    assert s["power_vdd_gpu_soc_mw"] == 10000 and s["power_vdd_cpu_cv_mw"] == 2000
    assert "power_nc_mw" not in s
    assert s["power_total_mw"] == 10000 + 2000 + 5000
    assert (s["gpu_load_pct"], s["gpu_freq_mhz"]) == (94.0, 1300.5)


def test_nvmap_clients_parse():
    assert parse_nvmap_clients(NVMAP.format(pid=42), 42) == (204800 * 1024, 215040 * 1024)
    assert parse_nvmap_clients(NVMAP.format(pid=42), 7) == (None, 215040 * 1024)


def test_sysfs_without_a_gpu_says_why(tmp_path):
    sampler = SysfsSampler(interval_s=0.01, root=tmp_path)
    assert "no GPU devfreq load file" in sampler.available()
    with pytest.raises(RuntimeError, match="no GPU devfreq"):
        sampler.open()




def watch_lines(sampler, n: int) -> list[dict]:
    """A query that lasts until the sampler has read `n` lines while watching it (every line of
    a recorded file, however slowly a loaded machine delivers them), then its readings."""
    child = sleeper(600)
    try:
        sampler.start(child.pid, time.perf_counter_ns())
        start = sampler.arrivals.n
        assert wait_for(lambda: sampler.arrivals.n - start >= n)
        return sampler.stop()
    finally:
        child.kill()
        child.wait()


@pytest.fixture
def fake_tegrastats(monkeypatch, tmp_path):
    args = tmp_path / "tegrastats.args"
    monkeypatch.setenv("EDGEBENCH_TEGRASTATS", str(recorded.tegrastats_program()))
    monkeypatch.setenv("FAKE_TEGRASTATS_ARGS", str(args))
    monkeypatch.setenv("EDGEBENCH_SYSROOT", str(tmp_path / "root"))
    return args


def test_tegrastats_stamps_lines_of_each_query_only(fake_tegrastats, monkeypatch, thread_errors):
    monkeypatch.setenv("FAKE_TEGRASTATS_LINES", str(recorded.tegrastats_lines("nano_root.txt")))
    NanoSysfs(Path(os.environ["EDGEBENCH_SYSROOT"]))  # gives the GPU's max clock
    sampler = TegrastatsSampler(interval_s=0.05)
    opened = time.perf_counter()
    sampler.open()
    try:
        assert wait_for(lambda: sampler.arrivals.n >= 3)  # lines between queries are no samples
        began = time.perf_counter()
        first = watch_lines(sampler, 4)  # the file's 3 lines, each seen at least once
        first_span = time.perf_counter() - began
        second = watch_lines(sampler, 2)  # the first of two lines is kept whole before the query ends
    finally:
        sampler.close()
    lifetime = time.perf_counter() - opened
    assert thread_errors == []
    assert fake_tegrastats.read_text().split() == ["--interval", "50"]
    assert first and second  # how many depends on the machine's load, not on the sampler
    assert all(0 <= s["t_s"] <= first_span for s in first)  # stamped from the query's own start
    assert {s["gpu_load_pct"] for s in first} == {0, 97, 99}
    assert all(s["gpu_freq_max_mhz"] == MAX_FREQ_HZ / 1e6 for s in first)
    info = sampler.info()
    assert info["n_lines"] >= len(first) + len(second) + 3
    assert 0 < info["achieved_interval_s"] * (info["n_lines"] - 1) <= lifetime  # the arrivals' own span
    assert info["n_malformed"] == 0 and info["cpu_time_s"] > 0 and info["child_cpu_time_s"] is not None
    assert sampler._proc is None


def test_tegrastats_skips_malformed_lines_with_a_warning(fake_tegrastats, monkeypatch, thread_errors):
    monkeypatch.setenv("FAKE_TEGRASTATS_LINES", str(recorded.tegrastats_lines("malformed.txt")))
    sampler = TegrastatsSampler(interval_s=0.02)
    sampler.open()
    try:
        samples = watch_lines(sampler, 5)  # the file's 4 lines, each seen at least once
    finally:
        sampler.close()
    assert thread_errors == []
    assert {s["gpu_load_pct"] for s in samples} == {0, 5}
    info = sampler.info()
    assert info["n_malformed"] >= 2
    assert any("not closed" in w for w in info["warnings"])


NVML_MODULE = Path(__file__).parent / "fakes" / "modules"


@pytest.fixture
def fake_modules(monkeypatch):
    """The fake `jtop` and `pynvml` importable, as if jetson-stats / nvidia-ml-py were installed."""
    monkeypatch.syspath_prepend(str(NVML_MODULE))
    monkeypatch.syspath_prepend(str(recorded.modules_dir()))
    for name in ("jtop", "pynvml"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setenv("FAKE_JTOP_GPU_COMMS", "sleep")
    monkeypatch.setenv("FAKE_NVML_GPU_COMMS", "sleep")


def sleep_query(sampler, n: int) -> tuple[list[dict], int]:
    """A `sleep` child (the name the fakes' GPU process rows match) watched until the sampler has
    `n` readings of it, however slowly a loaded machine delivers them."""
    child = subprocess.Popen(["sleep", "600"])
    try:
        sampler.start(child.pid, time.perf_counter_ns())
        assert wait_for(lambda: len(sampler._samples) >= n)
        return sampler.stop(), child.pid
    finally:
        child.kill()
        child.wait()


def test_jtop_reads_each_service_update_with_units_converted(fake_modules, monkeypatch, thread_errors):
    monkeypatch.setenv("FAKE_JTOP_SERVICE", "active")
    sampler = JtopSampler(interval_s=0.05)
    opened = time.perf_counter()
    sampler.open()
    try:
        samples, pid = sleep_query(sampler, 3)  # three updates in a row: each of the three frames
    finally:
        sampler.close()
    lifetime = time.perf_counter() - opened
    assert thread_errors == []
    assert samples and len(samples) <= sampler.arrivals.n
    assert {s["gpu_load_pct"] for s in samples} == {0.0, 60.0, 99.0}
    busy = next(s for s in samples if s["gpu_load_pct"] == 99.0)
    assert busy["gpu_freq_mhz"] == busy["gpu_freq_max_mhz"] == 921.6  # kHz -> MHz
    assert busy["gpu_mem_proc_bytes"] == 390000 * 1024  # kB -> bytes, the child's row
    assert busy["proc_rss_bytes"] % os.sysconf("SC_PAGE_SIZE") == 0 and busy["proc_rss_bytes"] > 0  # pages
    assert busy["ram_shared_bytes"] == 430000 * 1024
    assert busy["power_total_mw"] == busy["power_pom_5v_in_mw"] == 6000 and busy["power_pom_5v_gpu_mw"] == 2600
    assert busy["temp_gpu_c"] == 49.5 and busy["emc_freq_mhz"] == 1600
    info = sampler.info()
    assert info["service_interval_s"] == 0.05 and info["warnings"] == [] and info["n_samples"] == len(samples)
    assert 0 < info["achieved_interval_s"] * (sampler.arrivals.n - 1) <= lifetime
    assert info["nvpmodel"] == {"name": "MAXN", "id": 0} and info["jetson_clocks"] is False
    assert info["jetson_stats"] == "4.3.2"


def test_jtop_records_the_interval_another_client_set(fake_modules, monkeypatch):
    monkeypatch.setenv("FAKE_JTOP_SERVICE", "active")
    monkeypatch.setenv("FAKE_JTOP_SERVICE_INTERVAL", "0.2")
    sampler = JtopSampler(interval_s=0.05)
    sampler.open()
    try:
        samples, _ = sleep_query(sampler, 3)
    finally:
        sampler.close()
    info = sampler.info()
    assert info["interval_s"] == 0.05 and info["service_interval_s"] == 0.2
    assert "every 0.2 s, not the 0.05 s asked" in info["warnings"][0]
    # readings at the service's pace, never at the 0.05 s asked (a loaded machine only spaces them more)
    ts = [s["t_s"] for s in samples]
    assert all(b - a >= 0.19 for a, b in zip(ts, ts[1:], strict=False)), ts


@pytest.mark.parametrize("env, message", [
    ({}, "jtop.service is not active"),
    ({"FAKE_JTOP_SERVICE": "active", "FAKE_JTOP_SERVICE_VERSION": "4.2.12"}, "Mismatch version jtop service"),
])
def test_jtop_refusals_say_why(fake_modules, monkeypatch, env, message):
    monkeypatch.delenv("FAKE_JTOP_SERVICE", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(RuntimeError, match=message):
        JtopSampler(0.5).open()


def test_nvml_reads_the_child_memory_power_and_clocks(fake_modules, monkeypatch, thread_errors):
    monkeypatch.setenv("FAKE_NVML_NO_TEMP", "1")
    sampler = NvmlSampler(interval_s=0.02)
    assert sampler.available() is None
    sampler.open()
    child = subprocess.Popen(["sleep", "600"])
    try:
        sampler.start(child.pid, time.perf_counter_ns())
        assert wait_for(lambda: len(sampler._samples) >= 3)  # a query that lasts until it has readings
        samples = sampler.stop()
    finally:
        child.kill()
        child.wait()
        sampler.close()
    assert thread_errors == []
    s = samples[-1]  # the child ran until after the last reading
    assert s["gpu_load_pct"] == 87.0 and s["gpu_mem_proc_bytes"] == 1234 << 20
    assert s["power_total_mw"] == 250000 and s["gpu_freq_mhz"] == 1755.0 and s["gpu_freq_max_mhz"] == 1980.0
    assert "temp_gpu_c" not in s
    info = sampler.info()
    assert info["gpu_name"] == "Fake H100 80GB HBM3" and info["driver"] == "550.54.15"
    assert [w for w in info["warnings"] if "temperature" in w] == [
        "NVML temperature unavailable on this device, not sampled: Not Supported"]


def test_nvml_without_a_driver_says_why(fake_modules, monkeypatch):
    monkeypatch.setenv("FAKE_NVML", "absent")
    assert "no NVIDIA driver answers NVML" in NvmlSampler(0.1).available()


def test_jtop_rss_unit_follows_the_client_version():
    from types import SimpleNamespace

    from orchestrator.sampling.jtop import reading, rss_unit_bytes

    page = os.sysconf("SC_PAGE_SIZE")
    assert rss_unit_bytes("4.3.2") == page and rss_unit_bytes("4.4.0") == 1024 and rss_unit_bytes("7.1.0") == 1024
    row = [42, "user", "I", "Graphic", 20, "R", 1.0, 1000, 2048, "main"]
    jetson = SimpleNamespace(gpu={}, processes=[row], memory={}, power={}, temperature={}, cpu={})
    assert reading(jetson, 42, rss_unit_bytes("4.3.2")) == {"gpu_mem_proc_bytes": 2048 * 1024,
                                                            "proc_rss_bytes": 1000 * page}
    assert reading(jetson, 42, rss_unit_bytes("7.1.0"))["proc_rss_bytes"] == 1000 * 1024
