"""`edgebench load`'s arithmetic: arrival schedules, per-point percentiles, goodput and the knee.
Request lines come from the real client (orchestrator/load/client.py) and the server engine's own
figures, against a socket that answers as a33e6a0's server does (the network is the only fake),
written and read back through the load folder's format module."""

from __future__ import annotations

import itertools
import json
import socket
import threading
from pathlib import Path

import pytest

from orchestrator import fields as F
from orchestrator.config import RunConfig
from orchestrator.engine.llama_server import LlamaServer
from orchestrator.load import format as fmt
from orchestrator.load import point, profile
from orchestrator.load.client import LoadClient, without_own_queue
from orchestrator.packaged import default_workload
from orchestrator.workloads.schema import load_workload

TOKENS = ["He", "llo", " wor", "ld"]


# -- schedules ------------------------------------------------------------------------------
def test_constant_rate_deadlines_are_evenly_spaced_from_zero():
    assert profile.deadlines(profile.Point("constant", 5, rate=2.0)) == [0.0, 0.5, 1.0, 1.5, 2.0]


def test_poisson_deadlines_repeat_for_a_seed_and_average_the_rate():
    a = profile.deadlines(profile.Point("poisson", 4000, rate=4.0, seed=7))
    assert a == profile.deadlines(profile.Point("poisson", 4000, rate=4.0, seed=7))
    assert a != profile.deadlines(profile.Point("poisson", 4000, rate=4.0, seed=8))
    assert a[0] == 0.0 and all(b > x for x, b in itertools.pairwise(a))
    assert (len(a) - 1) / a[-1] == pytest.approx(4.0, rel=0.05)


def test_closed_loop_points_have_no_deadlines():
    assert profile.deadlines(profile.Point("sync", 3)) is None
    assert profile.deadlines(profile.Point("concurrency", 3, concurrency=2)) is None


def test_bad_rates_are_named():
    assert profile.parse_rates("0.25, 1,4") == [0.25, 1.0, 4.0]
    with pytest.raises(ValueError, match="'fast'"):
        profile.parse_rates("1,fast")
    with pytest.raises(ValueError, match="above zero"):
        profile.parse_rates("0")


def test_a_sweep_centres_its_rates_on_the_capacity_the_synchronous_point_suggests():
    # 2 slots, 4 s per request alone: at most 0.5 requests/s
    assert profile.sweep_rates([3.0, 5.0], 2) == [0.125, 0.25, 0.375, 0.5, 0.625, 0.75]
    with pytest.raises(ValueError):
        profile.sweep_rates([], 2)


def test_rate_points_run_lowest_first_each_with_its_own_seed():
    pts = profile.rate_points([4, 0.5, 1], 3, "poisson", 10)
    assert [(p.rate, p.seed) for p in pts] == [(0.5, 10), (1, 11), (4, 12)]


# -- the knee -------------------------------------------------------------------------------
def pts(*flags):
    return [{"rate": r, "sustained": s} for r, s in flags]


def test_the_knee_is_the_last_sustained_rate_before_the_first_that_is_not():
    k = point.knee(pts((4, True), (0.5, True), (1, True), (2, False), (8, True)))
    assert k == {"rate": 1, "interval": [1, 2], "first_unsustained": 2}


def test_every_rate_sustained_leaves_the_interval_open_above():
    assert point.knee(pts((1, True), (2, True)))["interval"] == [2, None]
    assert "no higher rate was tried" in point.sentence(point.knee(pts((1, True), (2, True))),
                                                        {"ttft_s": 2, "tbt_s": 0.2}, "this mix")


def test_no_rate_sustained_says_so():
    k = point.knee(pts((0.5, False), (1, False)))
    assert k["rate"] is None and k["interval"] == [None, 0.5]
    assert "does not serve" in point.sentence(k, {"ttft_s": 2, "tbt_s": 0.2}, "this mix")


def test_a_request_meets_the_budget_on_ttft_and_its_own_p90_gap():
    slo = {"ttft_s": 1.0, "tbt_s": 0.1}
    ok = {F.STATUS: "ok", F.TTFT_S: 0.9, F.TBT_S: [0.05] * 9 + [0.5]}  # p90 of 10 gaps: 0.095
    assert point.meets(ok, slo)
    assert not point.meets({**ok, F.TBT_S: [0.05] * 8 + [0.5, 0.5]}, slo)
    assert not point.meets({**ok, F.TTFT_S: 1.1}, slo)
    assert not point.meets({**ok, F.STATUS: "error"}, slo)


def test_the_prefill_check_is_set_aside_only_for_a_request_that_was_not_alone():
    v = {"ok": False, "checks": {"token_count": {"ok": True}, "prefill": {"ok": False}, "tbt_mean": {"ok": True}}}
    assert without_own_queue(v, 0) == v
    w = without_own_queue(v, 2)
    assert w["ok"] is True and "prefill" not in w["checks"] and "2 other" in w["skipped"]["prefill"]["why"]


# -- lines from the real client against a socket that answers as a33e6a0's server -------------
class FakeServer:
    """Answers every POST /completion with a33e6a0's event stream; every `fail_every`-th with HTTP 500."""

    def __init__(self, fail_every: int = 0, tokens: list[str] = TOKENS):
        self.tokens = tokens
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.fail_every, self.n = fail_every, 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            while len(body) < length:
                body += conn.recv(65536)
            with self.lock:
                self.n += 1
                fail = self.fail_every and self.n % self.fail_every == 0
            if fail:
                conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops")
                return
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
            for t in self.tokens:
                conn.sendall(b"data: " + json.dumps({"content": t, "stop": False}).encode() + b"\n\n")
            final = {"content": "", "stop": True, "tokens_evaluated": 5,
                     "completion_probabilities": [{"content": t, "probs": []} for t in self.tokens],
                     "timings": {"prompt_n": 5, "prompt_ms": 0.5, "predicted_n": len(self.tokens),
                                 "predicted_ms": 0.3}}
            conn.sendall(b"data: " + json.dumps(final).encode() + b"\n\n")


def measured_lines(tmp_path: Path, p: profile.Point, fail_every: int = 0, tokens: list[str] = TOKENS,
                   doc: dict | None = None) -> list[dict]:
    """The lines of one load point measured by the real client against FakeServer, in tmp_path/load."""
    server = FakeServer(fail_every, tokens)
    cfg = RunConfig(binary=tmp_path / "server", model=tmp_path / "m.gguf", workload=default_workload(),
                    out_dir=tmp_path, engine="server")
    engine = LlamaServer(n_ctx_train=None, ignore_eos=True, base_ctx=512)
    engine.port, engine.run_dir = server.port, tmp_path
    folder = tmp_path / "load"
    fmt.create(folder, doc or {"points": [p.to_json()]})
    lock = threading.Lock()

    def on_request(line):
        with lock:
            fmt.append(folder, fmt.REQUESTS, [line])

    import time

    LoadClient(engine, cfg, on_request).run(0, 0, p, load_workload(default_workload())[:3], time.perf_counter_ns())
    fmt.append(folder, fmt.POINTS, [{fmt.POINT: 0, fmt.ATTEMPT: 0, fmt.WINDOW_S: 1.0, fmt.CLIENT_CPU_S: 0.2}])
    return fmt.kept_requests(folder)


@pytest.mark.parametrize("p", [profile.Point("constant", 6, rate=50.0), profile.Point("concurrency", 6,
                                                                                      concurrency=3)])
def test_every_request_becomes_one_line_with_the_engine_s_figures(tmp_path, p):
    lines = measured_lines(tmp_path, p)
    assert sorted(r[fmt.SEQ] for r in lines) == list(range(6))
    for r in lines:
        assert r[F.STATUS] == "ok" and r[F.OUTPUT_TOKENS] == len(TOKENS) and len(r[F.TBT_S]) == len(TOKENS) - 1
        assert r[F.VALIDATION]["checks"]["token_count"]["ok"]
        assert r[fmt.SEND_LAG_S] == pytest.approx(r[fmt.SENT_S] - r[fmt.SCHEDULED_S])
        assert r[fmt.END_S] >= r[fmt.SENT_S] and r[fmt.E2E_S] == pytest.approx(r[fmt.END_S] - r[fmt.SENT_S])
        assert r[fmt.QUEUE_WAIT_S] == pytest.approx(r[F.TTFT_S] - 0.0005)
    if p.open_loop:
        assert sorted(r[fmt.SCHEDULED_S] for r in lines) == profile.deadlines(p)


def test_a_point_s_figures_count_failures_goodput_and_the_client_s_cpu(tmp_path):
    p = profile.Point("constant", 8, rate=50.0)
    lines = measured_lines(tmp_path, p, fail_every=4)  # 2 of 8 answered HTTP 500
    window = fmt.finished_points(tmp_path / "load")[0]
    generous, strict = {"ttft_s": 60.0, "tbt_s": 60.0}, {"ttft_s": 1e-9, "tbt_s": 60.0}
    f = point.figures({**p.to_json(), "label": p.label}, lines, window, generous)
    assert (f["n_sent"], f["n_ok"], f["n_failed"], f["n_met"]) == (8, 6, 2, 6)
    assert f["slo_attainment"] == 0.75 and not f["sustained"]
    assert f["goodput_rps"] == pytest.approx(6 / f["duration_s"]) == f["throughput_rps"]
    ttfts = sorted(r[F.TTFT_S] for r in lines if r[F.STATUS] == "ok")
    assert f["ttft"]["n"] == 6 and f["ttft"]["p50"] == pytest.approx((ttfts[2] + ttfts[3]) / 2)
    assert f["tbt"]["n"] == 6 * (len(TOKENS) - 1)
    assert f["client_cpu_per_request_s"] == pytest.approx(0.2 / 8)
    assert f["energy_per_request_j"] is None  # no power readings: never a made-up zero
    assert point.figures(p.to_json(), lines, window, strict)["goodput_rps"] == 0
    failed = [r for r in lines if r[F.STATUS] != "ok"]
    assert len(failed) == 2 and all("HTTP 500" in r[F.ERROR] for r in failed)


def test_an_interrupted_attempt_s_requests_are_left_out(tmp_path):
    folder = tmp_path / "load"
    fmt.create(folder, {"points": []})
    fmt.append(folder, fmt.REQUESTS, [{fmt.POINT: 0, fmt.ATTEMPT: 0, "seq": 0}, {fmt.POINT: 0, fmt.ATTEMPT: 1,
                                                                                 "seq": 0}])
    assert fmt.kept_requests(folder) == []  # no point finished yet
    fmt.append(folder, fmt.POINTS, [{fmt.POINT: 0, fmt.ATTEMPT: 1}])
    assert fmt.kept_requests(folder) == [{fmt.POINT: 0, fmt.ATTEMPT: 1, "seq": 0}]
