"""`edgebench load` end to end with the real a33e6a0 server and the tiny twin: a two-rate sweep's
folder and its figures, every request checked against the server's own timings, the report's
page, and a sweep stopped by SIGTERM mid-point then resumed at that point."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from waiting import HANG_S, wait_for

from orchestrator import exitcodes
from orchestrator import fields as F
from orchestrator.load import format as fmt
from orchestrator.packaged import default_workload

DEFAULT = default_workload()


def load_cmd(llama_bin_dir, tiny_model, out, *more) -> list[str]:
    return [sys.executable, "-m", "orchestrator", "load", "--binary", str(llama_bin_dir / "server"),
            "--model", str(tiny_model), "--workload", str(DEFAULT), "--limit", "1", "--requests", "4",
            "--slots", "2", "--threads", "1", "--gpu-sampler", "none", "--out", str(out), *more]


@pytest.fixture(scope="module")
def swept(tmp_path_factory, llama_bin_dir, tiny_model):
    tmp = tmp_path_factory.mktemp("load")
    out = tmp / "sweep"
    res = subprocess.run(load_cmd(llama_bin_dir, tiny_model, out, "--rates", "2,8", "--slo", "ttft=2s,tbt=200ms",
                                  "--format", "json"),
                         env=dict(os.environ, EDGEBENCH_ROOT=str(tmp)), capture_output=True, text=True,
                         timeout=HANG_S)
    return out, res


def test_the_folder_gives_each_rate_s_percentiles_goodput_throughput_and_the_knee(swept):
    out, res = swept
    assert res.returncode == exitcodes.OK, res.stderr + res.stdout
    doc = json.loads((out / fmt.LOAD_JSON).read_text())
    assert doc["status"] == "complete" and doc["slots"] == 2 and doc["slo"] == {"ttft_s": 2.0, "tbt_s": 0.2}
    # a request queued for a slot is silent by design: only --timeout abandons it
    assert doc["config"]["idle_timeout_s"] == doc["config"]["timeout_s"] == 600
    argv = doc["server"]["argv"]
    assert int(argv[argv.index("-c") + 1]) == 2 * doc["ctx_per_slot"]  # each slot holds a query's context
    assert "-np" in doc["server"]["argv"] and doc["server"]["argv"][doc["server"]["argv"].index("-np") + 1] == "2"
    results = doc["results"]
    assert json.loads(res.stdout) == results  # --format json prints load.json's results
    assert [p["rate"] for p in results["points"]] == [2.0, 8.0]
    for p in results["points"]:
        assert p["n_sent"] == p["n_ok"] == 4
        for m in ("ttft", "tbt", "tpot", "e2e"):
            assert p[m]["p50"] <= p[m]["p90"] <= p[m]["p99"], (m, p[m])
        assert p["throughput_rps"] > 0 and 0 <= p["goodput_rps"] <= p["throughput_rps"]
        assert p["client_cpu_per_request_s"] > 0 and p["server_cpu_s"] > 0 and p["server_peak_rss_bytes"] > 1 << 20
        assert p["send_lag"]["n"] == 4
    k = results["knee"]
    assert set(k) == {"rate", "interval", "first_unsustained"} and k["rate"] in (None, 2.0, 8.0)
    assert "requests/s" in results["answer"]


def test_every_request_is_checked_against_the_server_s_own_timings(swept):
    out, _ = swept
    reqs = fmt.kept_requests(out)
    assert len(reqs) == 8
    for r in reqs:
        v = r[F.VALIDATION]
        assert r[F.STATUS] == "ok" and r[F.OUTPUT_TOKENS] == r[F.LLAMA]["timings"]["predicted_n"]
        assert v["checks"]["token_count"]["ok"] and v["checks"]["stream_matches_output"]["ok"], v
        assert "tbt_mean" in v["checks"]
        # alone on the server: TTFT checked against prompt_ms; with others in flight: set aside, and why
        assert ("prefill" in v["checks"]) == (r[fmt.IN_FLIGHT] == 0) != ("prefill" in v.get("skipped", {}))
        assert r[fmt.QUEUE_WAIT_S] == pytest.approx(r[F.TTFT_S] - r[F.LLAMA]["timings"]["prompt_ms"] / 1000)
    assert len(fmt.read(out, fmt.SAMPLES)) > 0  # the process sampler watched the server over each window


def test_the_report_draws_the_three_figures_and_the_answer(swept, tmp_path):
    out, _ = swept
    res = subprocess.run([sys.executable, "-m", "orchestrator", "report", str(out)], capture_output=True, text=True,
                         env=dict(os.environ, EDGEBENCH_ROOT=str(tmp_path)), timeout=HANG_S)
    assert res.returncode == 0, res.stderr
    page = (out / fmt.REPORT_HTML).read_text()
    answer = json.loads((out / fmt.LOAD_JSON).read_text())["results"]["answer"]
    assert answer in page
    assert page.count('src="data:image/svg+xml;base64,') == 2  # latency, goodput
    assert "no power readings in this load folder" in page  # energy: no power rail on this host, said so


def test_a_sweep_stopped_mid_point_resumes_at_that_point(tmp_path, llama_bin_dir, tiny_model):
    out = tmp_path / "sweep"
    env = dict(os.environ, EDGEBENCH_ROOT=str(tmp_path))
    # a synchronous point, then 4 requests due at 0, 5, 10 and 15 s: the second point is still sending
    # when its first answer is on disk
    proc = subprocess.Popen(load_cmd(llama_bin_dir, tiny_model, out, "--sync", "--rates", "0.2", "--arrivals",
                                     "constant"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: any(r[fmt.POINT] == 1 for r in fmt.read(out, fmt.REQUESTS)) or proc.poll() is not None,
                    timeout=HANG_S, step=0.02)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(HANG_S) == exitcodes.for_signal(signal.SIGTERM)
    assert json.loads((out / fmt.LOAD_JSON).read_text())["status"] == "interrupted"
    assert list(fmt.finished_points(out)) == [0]

    res = subprocess.run([sys.executable, "-m", "orchestrator", "load", "--resume", str(out)], env=env,
                         capture_output=True, text=True, timeout=HANG_S)
    assert res.returncode == exitcodes.OK, res.stderr + res.stdout
    assert "1 of 2 load points left" in res.stdout
    doc = json.loads((out / fmt.LOAD_JSON).read_text())
    assert doc["status"] == "complete" and [p["n_sent"] for p in doc["results"]["points"]] == [4, 4]
    first_try = [r for r in fmt.read(out, fmt.REQUESTS) if r[fmt.POINT] == 1 and r[fmt.ATTEMPT] == 0]
    assert first_try  # kept on disk, left out of the figures
    assert sorted(r[fmt.SEQ] for r in fmt.kept_requests(out) if r[fmt.POINT] == 1) == [0, 1, 2, 3]
    assert all(r[fmt.ATTEMPT] == 1 for r in fmt.kept_requests(out) if r[fmt.POINT] == 1)


def test_on_a_board_with_power_rails_each_point_has_its_energy_and_the_figure_draws(tmp_path, llama_bin_dir,
                                                                                     tiny_model):
    from telemetry_board import board

    env, args, _ = board(tmp_path, "tegrastats")  # the recorded Nano's tegrastats lines, power rails included
    out = tmp_path / "sweep"
    # 50 ms lines: a point of the tiny twin can be shorter than the default 0.5 s, and then holds none
    cmd = [a for a in load_cmd(llama_bin_dir, tiny_model, out, "--rates", "2,8", "--interval", "0.05")
           if a not in ("--gpu-sampler", "none")]
    res = subprocess.run([*cmd, *args], env=env, capture_output=True, text=True, timeout=HANG_S)
    assert res.returncode == exitcodes.OK, res.stderr + res.stdout
    points = json.loads((out / fmt.LOAD_JSON).read_text())["results"]["points"]
    powered = {s[fmt.POINT] for s in fmt.read(out, fmt.SAMPLES) if s.get(F.POWER_TOTAL_MW) is not None}
    assert powered  # some point held a power reading: it is the energy of those that is checked
    for p in points:
        if p[fmt.INDEX] not in powered:  # shorter than the lines' interval: no energy, not a wrong one
            assert p[fmt.ENERGY_J] is None
            continue
        assert p[fmt.ENERGY_J] > 0 and p[fmt.ENERGY_PER_REQUEST_J] == pytest.approx(p[fmt.ENERGY_J] / p[fmt.N_SENT])
        assert p[fmt.ENERGY_PER_TOKEN_J] == pytest.approx(p[fmt.ENERGY_J] / p[fmt.OUTPUT_TOKENS])
    res = subprocess.run([sys.executable, "-m", "orchestrator", "report", str(out)], env=env, capture_output=True,
                         text=True, timeout=HANG_S)
    assert res.returncode == 0, res.stderr
    page = (out / fmt.REPORT_HTML).read_text()
    assert page.count('src="data:image/svg+xml;base64,') == 3  # latency, goodput and energy per request
