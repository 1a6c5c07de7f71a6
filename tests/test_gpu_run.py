"""A real `edgebench run` (real llama.cpp `main`, the tiny twin) with each GPU sampler on a fake
board: readings land in samples.jsonl with units in their names, the per-query figures in
queries.jsonl match a hand computation over those readings, and the manifest says what ran."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from waiting import HANG_S

from orchestrator.sampling import recorded
from orchestrator.sampling.recorded import NanoSysfs, TraceWriter

pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parent
FAKES = TESTS / "fakes"
UNIT_SUFFIXES = ("_bytes", "_pct", "_mw", "_c", "_mhz", "_s", "_online", "_n", "_blocks")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.fixture
def board_env(tmp_path):
    """A bare machine (no tegrastats, no jtop, no NVML) that a test turns into a fake board."""
    root = tmp_path / "sysroot"
    root.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAKE_", "EDGEBENCH_"))}
    env.update(EDGEBENCH_ROOT=str(tmp_path), EDGEBENCH_LOCK=str(tmp_path / "measure.lock"),
               EDGEBENCH_SYSROOT=str(root), PATH=f"{Path(sys.executable).parent}:/usr/bin:/bin")
    return env, root


def workload(tmp_path: Path) -> Path:
    wl = tmp_path / "w.jsonl"
    wl.write_text("".join(json.dumps({"id": f"q{i}", "category": "simple", "prompt": f"Tell me about item {i}.",
                                      "max_tokens": 24, "prompt_tokens_est": 8}) + "\n" for i in range(2)))
    return wl


def edgebench_run(tmp_path, env, llama_bin_dir, tiny_model, *extra) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-m", "orchestrator", "run", "--binary", str(llama_bin_dir / "main"),
                          "--model", str(tiny_model), "--workload", str(workload(tmp_path)), "--reports-dir", str(out),
                          # one thread: main's spinning threads crawl when a sampler takes one of 2 cores
                          "--threads", "1", *extra], env=env, capture_output=True, text=True, timeout=HANG_S)
    assert res.returncode == 0, res.stdout + res.stderr
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert len(runs) == 1
    return res, runs[0]


def gpu_series(run: Path, sampler: str) -> tuple[list[dict], dict[str, list[dict]], dict]:
    recs = read_jsonl(run / "queries.jsonl")
    assert [r["query_id"] for r in recs] == ["q0", "q1"]  # the per-record checks below check something
    samples = [s for s in read_jsonl(run / "samples.jsonl") if s["sampler"] == sampler]
    by_attempt = {r["attempt"]: [s for s in samples if s["attempt"] == r["attempt"]] for r in recs}
    manifest = json.loads((run / "manifest.json").read_text())
    return recs, by_attempt, manifest


def hand_energy_j(samples: list[dict], t_exit: float) -> float:
    """Written out longhand, mW * s / 1000: the first reading in [0, t_exit] held back to 0, trapezoids
    between consecutive readings, the last reading held to t_exit."""
    pts = sorted((s["t_s"], s["power_total_mw"]) for s in samples if 0 <= s["t_s"] <= t_exit and "power_total_mw" in s)
    total = pts[0][0] * pts[0][1] / 1000 + (t_exit - pts[-1][0]) * pts[-1][1] / 1000
    for i in range(1, len(pts)):
        total += (pts[i][0] - pts[i - 1][0]) * (pts[i][1] + pts[i - 1][1]) / 2 / 1000
    return total


def check_idle_and_net(rec: dict, manifest: dict, sampler: str) -> None:
    """The idle window before the first query, and each query's energy net of it."""
    idle = manifest["idle_power"]
    assert idle["sampler"] == sampler and idle["window_s"] == 2.0 and idle["n"] >= 1, idle
    assert rec["idle_power_mw"] == idle["power_mw"]
    assert rec["energy_net_j"] == pytest.approx(rec["energy_j"] - idle["power_mw"] / 1000 * rec["total_s"], abs=1e-5)
    assert rec["energy_coverage"] == pytest.approx(rec["energy_window_s"] / rec["total_s"], abs=1e-3)


def check_units(samples: list[dict]) -> None:
    for s in samples:
        for key in s:
            if key in ("query_id", "attempt", "sampler", "t_s", "timestamp", "unparsed"):
                continue
            assert key.endswith(UNIT_SUFFIXES), key


def check_counts(run: Path, recs: list[dict], by_attempt: dict[str, list[dict]]) -> None:
    """Reading counts follow what the run did, never a count a loaded machine may miss: every
    query has readings, and its record counts exactly the lines samples.jsonl holds for it."""
    every = read_jsonl(run / "samples.jsonl")
    for rec in recs:
        assert by_attempt[rec["attempt"]], f"no reading in a query of {rec['total_s']} s"
        assert rec["n_samples"] == sum(1 for s in every if s["attempt"] == rec["attempt"])


def sampler_info(manifest: dict, name: str) -> dict:
    return next(s for s in manifest["samplers"] if s["name"] == name)


def test_no_gpu_source_records_none_and_says_so_once(tmp_path, board_env, llama_bin_dir, tiny_model):
    env, _ = board_env
    res, run = edgebench_run(tmp_path, env, llama_bin_dir, tiny_model)
    assert res.stdout.count("GPU telemetry: none (") == 1
    recs, by_attempt, manifest = gpu_series(run, "none")
    info = sampler_info(manifest, "none")
    assert info["kind"] == "gpu" and set(info["selection"]) == {"jtop", "tegrastats", "sysfs", "nvml"}
    assert all(r["samplers"] == ["process", "none"] and "energy_j" not in r for r in recs)
    assert "idle_power" not in manifest  # nothing to watch the idle board with: no window, no wait
    assert manifest["board"]["start"]["nvpmodel"] == "unavailable"
    assert "packages" in manifest["board"]["finish"]


def test_tegrastats_run(tmp_path, board_env, llama_bin_dir, tiny_model):
    env, root = board_env
    NanoSysfs(root)  # for the GPU's maximum clock
    env.update(EDGEBENCH_TEGRASTATS=str(recorded.tegrastats_program()), FAKE_TEGRASTATS_ARGS=str(tmp_path / "args"),
               FAKE_TEGRASTATS_LINES=str(recorded.tegrastats_lines()))
    res, run = edgebench_run(tmp_path, env, llama_bin_dir, tiny_model, "--gpu-sampler", "tegrastats",
                             "--interval", "0.02")
    assert "GPU telemetry: tegrastats every 0.02 s" in res.stdout
    recs, by_attempt, manifest = gpu_series(run, "tegrastats")
    check_counts(run, recs, by_attempt)
    for rec in recs:
        mine = by_attempt[rec["attempt"]]
        check_units(mine)
        assert {s["gpu_load_pct"] for s in mine} <= {0, 97, 99}
        assert rec["energy_j"] == pytest.approx(hand_energy_j(mine, rec["total_s"]), abs=1e-5)
        assert rec["energy_per_token_j"] == pytest.approx(rec["energy_j"] / rec["output_tokens"], abs=1e-5)
        check_idle_and_net(rec, manifest, "tegrastats")
        t_first = rec["cold_ttft_s"]
        t_last = t_first + sum(rec["tbt_s"])
        decode = [s["gpu_load_pct"] for s in mine if t_first <= s["t_s"] <= t_last]
        assert rec["gpu_load_decode_n"] == len(decode)
        if decode:
            assert rec["gpu_load_decode_mean_pct"] == pytest.approx(sum(decode) / len(decode), abs=1e-3)
        temps = [v for s in mine if s["t_s"] <= rec["total_s"] for k, v in s.items()
                 if k.startswith("temp_") and k != "temp_pmic_c" and v is not None]
        assert rec["temp_peak_c"] == max(temps) < 100  # PMIC's constant 100C left out
        # The recorded 99%@614 MHz line never comes twice in a row: a ramp, never a cap.
        assert rec["throttled"] is False
    info = sampler_info(manifest, "tegrastats")
    assert (tmp_path / "args").read_text().split() == ["--interval", "20"]  # the run's interval reached it
    # every line is counted, kept or not: the run's interval is what the line count says
    assert info["n_lines"] >= sum(len(x) for x in by_attempt.values())
    assert info["achieved_interval_s"] > 0 and info["n_malformed"] == 0 and info["cpu_time_s"] > 0


def test_sysfs_run_constant_power_gives_power_times_span(tmp_path, board_env, llama_bin_dir, tiny_model):
    env, root = board_env
    board = NanoSysfs(root)
    rails = {"POM_5V_IN": 5000, "POM_5V_GPU": 2000, "POM_5V_CPU": 1000}
    frames = [{"gpu_load_permille": load, "gpu_freq_hz": 921600000, "rails": rails,
               "temps_milli": {"GPU-therm": 45000}} for load in (300, 800)]
    writer = TraceWriter(board, frames, period_s=0.02)
    try:
        res, run = edgebench_run(tmp_path, env, llama_bin_dir, tiny_model, "--gpu-sampler", "sysfs",
                                 "--interval", "0.01")
    finally:
        writer.close()
    recs, by_attempt, manifest = gpu_series(run, "sysfs")
    check_counts(run, recs, by_attempt)
    for rec in recs:
        mine = by_attempt[rec["attempt"]]
        check_units(mine)
        assert mine, "the sampler read nothing during the query"
        # 5 W all along: the energy is 5 W over the whole query, spawn to exit (both rounded to 1e-6),
        # and the idle window read the same 5 W, so nothing is left net of idle.
        assert rec["energy_j"] == pytest.approx(5.0 * rec["total_s"], abs=1e-5)
        check_idle_and_net(rec, manifest, "sysfs")
        assert manifest["idle_power"]["power_mw"] == 5000.0 and rec["energy_net_j"] == pytest.approx(0, abs=1e-5)
        # A reading can miss one rail (the fake driver rewrites files one at a time): its edges are held too.
        assert rec["energy_pom_5v_gpu_j"] == pytest.approx(2.0 * rec["total_s"], abs=1e-5)
        assert rec["gpu_load_decode_peak_pct"] in (30.0, 80.0) and rec["throttled"] is False
        assert rec["temp_peak_c"] == 45.0
    info = sampler_info(manifest, "sysfs")
    assert info["selection"] == {"sysfs": "asked"}
    # The writer changes `load` 20 ms or more apart; the sampler reads every 10 ms: the refresh it
    # times is the writer's, not its own interval (how much longer a busy machine makes it is no test).
    assert info["load_changes"] >= 1 and info["load_refresh_s"] >= 0.015, info


def test_jtop_run_chosen_automatically_with_ngl_note(tmp_path, board_env, llama_bin_dir, tiny_model):
    env, root = board_env
    (root / "run").mkdir()
    (root / "run/jtop.sock").touch()
    env.update(PYTHONPATH=str(recorded.modules_dir()), FAKE_JTOP_SERVICE="active", FAKE_JTOP_GPU_COMMS="main")
    res, run = edgebench_run(tmp_path, env, llama_bin_dir, tiny_model, "--interval", "0.02", "--ngl", "1")
    assert "GPU telemetry: jtop every 0.02 s" in res.stdout
    recs, by_attempt, manifest = gpu_series(run, "jtop")
    check_counts(run, recs, by_attempt)
    for rec in recs:
        mine = by_attempt[rec["attempt"]]
        check_units(mine)
        # The fake's frames give the child 0, 380000 or 390000 kB of GPU memory.
        seen = {s.get("gpu_mem_proc_bytes") for s in mine if s["t_s"] <= rec["total_s"]}
        assert rec["gpu_mem_peak_bytes"] == max(x for x in seen if x is not None)
        assert rec["gpu_mem_peak_bytes"] in (0, 380000 * 1024, 390000 * 1024)
        assert rec["energy_j"] == pytest.approx(hand_energy_j(mine, rec["total_s"]), abs=1e-5)
        check_idle_and_net(rec, manifest, "jtop")
        assert "CUDA allocations" in rec["rss_note"]
    info = sampler_info(manifest, "jtop")
    assert info["service_interval_s"] == 0.02 and info["jetson_stats"] == "4.3.2"
    assert info["selection"]["jtop"] == "chosen automatically"


def test_nvml_run(tmp_path, board_env, llama_bin_dir, tiny_model):
    env, _ = board_env
    env.update(PYTHONPATH=str(FAKES / "modules"), FAKE_NVML_GPU_COMMS="main", FAKE_NVML_POWER_MW="200000")
    res, run = edgebench_run(tmp_path, env, llama_bin_dir, tiny_model, "--gpu-sampler", "nvml", "--interval", "0.01")
    recs, by_attempt, manifest = gpu_series(run, "nvml")
    for rec in recs:
        mine = by_attempt[rec["attempt"]]
        check_units(mine)
        assert rec["gpu_mem_peak_bytes"] == 1234 << 20
        assert rec["energy_j"] == pytest.approx(200.0 * rec["total_s"], abs=1e-4)
        assert manifest["idle_power"]["power_mw"] == 200000.0 and rec["energy_net_j"] == pytest.approx(0, abs=1e-4)
        assert rec["gpu_load_decode_mean_pct"] == 87.0 and rec["temp_peak_c"] == 54.0
    assert sampler_info(manifest, "nvml")["gpu_name"] == "Fake H100 80GB HBM3"
