"""The resident server engine (`--engine server`): the SSE client against a socket that answers
on the test's cue, a33e6a0's rule for which event carries which token, and the real a33e6a0
`server` on the tiny twin: records as main's mean them, the server killed mid-run and restarted,
loopback only, a server that does not come up, a run killed outright then resumed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from waiting import HANG_S, wait_for

from orchestrator import exitcodes
from orchestrator import fields as F
from orchestrator.config import RunConfig
from orchestrator.engine import sse
from orchestrator.engine.llama_server import LlamaServer, piece_bytes, token_times
from orchestrator.errors import UserError
from orchestrator.packaged import default_workload
from orchestrator.sampling.base import Sampler
from orchestrator.sampling.process import ProcessSampler
from orchestrator.session import Session

DEFAULT = default_workload()


# -- the SSE client, against a socket the test drives -------------------------------------------
class CuedServer:
    """Answers one request with a chunked event stream, sending each event only when the test says."""

    def __init__(self, events: list[bytes]):
        self.events = events
        self.cues = [threading.Event() for _ in events]
        self.request = b""
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        conn, _ = self.sock.accept()
        with conn:
            while b"\r\n\r\n" not in self.request:
                self.request += conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
            for cue, ev in zip(self.cues, self.events, strict=True):
                cue.wait(HANG_S)
                # split inside the chunk: an event is stamped when its last byte comes
                data = b"data: " + ev + b"\n\n"
                frame = f"{len(data):x}\r\n".encode() + data + b"\r\n"
                conn.sendall(frame[:len(frame) // 2])
                conn.sendall(frame[len(frame) // 2:])
            conn.sendall(b"0\r\n\r\n")
        self.sock.close()


def test_each_event_is_stamped_when_its_bytes_arrive_not_when_the_answer_ends():
    srv = CuedServer([b'{"content":"a","stop":false}', b'{"content":"","stop":true,"timings":{}}'])
    released = []

    def release_next(res):
        # the client waits in select between reads: each wait after the last event came releases the next
        if len(released) < len(srv.cues) and len(res.events) == len(released):
            released.append(time.perf_counter_ns())
            srv.cues[len(released) - 1].set()

    res = sse.exchange(srv.port, "POST", "/completion", b"{}", HANG_S, HANG_S, on_wait=release_next)
    assert res.outcome == "ok" and res.complete and res.status == 200
    assert [json.loads(e.data)["stop"] for e in res.events] == [False, True]
    # each event arrived after the test released it, and before the next was released
    assert res.t_send_ns < released[0] < res.events[0].t_ns < released[1] < res.events[1].t_ns
    assert srv.request.startswith(b"POST /completion HTTP/1.1\r\nHost: 127.0.0.1:")


def test_a_refused_connection_is_an_outcome_not_an_exception():
    res = sse.exchange(sse.free_port(), "GET", "/health", None, 5, 5)
    assert res.outcome == "refused" and "cannot connect to 127.0.0.1" in res.error


# -- which a33e6a0 event carries which token ------------------------------------------------------
# The shapes are a33e6a0's (server.cpp): a token ending inside a UTF-8 character is held back, left out
# of the last event's token list, and its bytes ride on the next event's text.
def a33e6a0_answer(events: list[str], listed: list[str], predicted_n: int):
    partials = [(10 * (i + 1), {"content": c, "stop": False}) for i, c in enumerate(events)]
    final = {"stop": True, "timings": {"predicted_n": predicted_n},
             "completion_probabilities": [{"content": c, "probs": []} for c in listed]}
    return partials, final


def test_a_character_split_over_three_tokens_rides_on_the_event_of_its_last():
    # 足 is three byte tokens: two held, the third sent with them, listed as `byte: \xb3`
    partials, final = a33e6a0_answer([" caf", "足", " au"], [" caf", "byte: \\xb3", " au"], 5)
    assert piece_bytes("byte: \\xb3") == b"\xb3" and piece_bytes(" caf") == b" caf"
    times, how = token_times(partials, final)
    assert times == [10, 20, 20, 20, 30] and how == {"method": "token_text", "matched": True, "held": 2}


def test_a_broken_character_held_then_sent_as_u_fffd_is_placed_by_the_server_s_count():
    # a lone lead byte (held), then a token that is no continuation: the text goes out as U+FFFD
    partials, final = a33e6a0_answer([" a", "\ufffd b", " c"], [" a", " b", " c"], 4)
    times, how = token_times(partials, final)
    assert times == [10, 20, 20, 30] and how["matched"]


def test_events_that_do_not_add_up_to_the_server_s_count_are_flagged_not_guessed():
    partials, final = a33e6a0_answer([" a", " b"], [" a", " b"], 3)
    times, how = token_times(partials, final)
    assert times == [] and not how["matched"] and "1 of 3 tokens unplaced" in how["why"]


def test_todays_server_names_each_event_s_own_token_and_a_held_one_rides_with_the_next():
    # ids 5 and 6 are the two bytes of é (5 held: no event, named nowhere), 7 is " hi"
    pieces = [b""] * 5 + [b"\xc3", b"\xa9", b" hi"]
    partials = [(10, {"content": " hi", "tokens": [7]}), (20, {"content": "é", "tokens": [6]})]
    times, how = token_times(partials, {"stop": True, "tokens": [], "timings": {"predicted_n": 3}}, pieces)
    assert times == [10, 20, 20] and how == {"method": "token_ids", "matched": True, "held": 1}


# -- the real a33e6a0 server ----------------------------------------------------------------------
def config(llama_bin_dir, model, out, wl=DEFAULT, **kw) -> RunConfig:
    return RunConfig(binary=llama_bin_dir / "server", model=model, workload=wl, out_dir=out, engine="server",
                     threads=1, gpu_sampler="none", idle_window_s=0, **kw)


def listeners(port: int) -> list[str]:
    """Local addresses listening on `port`, as the kernel lists them (/proc/net/tcp and tcp6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, _, p = local.partition(":")
            if state == "0A" and int(p, 16) == port:
                found.append(addr)
    return found


@pytest.fixture(scope="module")
def server_run(tmp_path_factory, llama_bin_dir, tiny_model):
    out = tmp_path_factory.mktemp("server") / "out"
    seen = {}

    def log(msg):
        if s.engine.server and "port" not in seen:
            seen.update(port=s.engine.port, listeners=listeners(s.engine.port))

    s = Session.create(config(llama_bin_dir, tiny_model, out, limit=2, interval_s=0.01), log=log,
                       samplers=[ProcessSampler(0.01)])
    result = s.run()
    return s, result, seen


def test_every_query_ok_with_main_s_figures_and_the_server_s_own_account(server_run, llama_bin_dir, tiny_model):
    from orchestrator.workloads.tokencount import count_tokens

    s, result, _ = server_run
    recs = result.records
    assert len(recs) == 10 and result.exit_code == exitcodes.OK
    assert F.undeclared(F.RECORD, {k for r in recs for k in r}) == []
    for r in recs:
        assert r[F.STATUS] == "ok" and r[F.ENGINE_NAME] == "server", r
        v = r[F.VALIDATION]
        assert v["checks"]["token_count"]["ok"] and v["checks"]["stream_matches_output"]["ok"], v
        assert r[F.OUTPUT_TOKENS] == r[F.MAX_TOKENS]  # the twin runs with --ignore-eos
        assert len(r[F.TBT_S]) == r[F.OUTPUT_TOKENS] - 1
        assert 0 < r[F.TTFT_S] < r[F.TOTAL_S]
        # The twin decodes a token in well under a millisecond; on a busy core every later event
        # can arrive in one read and share its stamp. Then TPOT is honestly 0 and there is no
        # decode rate, rather than a division by zero or an invented one.
        assert r[F.TPOT_S] >= 0 and sum(r[F.TBT_S]) == pytest.approx(r[F.TPOT_S] * (r[F.OUTPUT_TOKENS] - 1))
        assert r.get(F.DECODE_TOK_S) == (1 / r[F.TPOT_S] if r[F.TPOT_S] > 0 else None)
        assert F.LOAD_S not in r  # the server loaded once, before the run: the manifest says how long
        assert r[F.PEAK_RSS_KERNEL_BYTES] > 1 << 20 and r[F.PEAK_RSS_BYTES] >= r[F.PEAK_RSS_KERNEL_BYTES]
        assert r[F.MAIN_CPU_S] > 0 and r[F.CPU_LIFE_PCT_NORM] > 0
        assert r[F.SERVER_PID] == s.store.manifest["engine"]["pid"]
        assert r[F.LLAMA]["timings"]["predicted_n"] == r[F.OUTPUT_TOKENS]
    # the server saw the prompt main sees: the same tokens, BOS included
    q = next(q for q in s.prep.queries if q.id == recs[0][F.QUERY_ID])
    assert recs[0][F.PROMPT_TOKENS] == count_tokens(q.prompt, llama_bin_dir / "tokenize", tiny_model)
    engine = s.store.manifest["engine"]
    assert engine["name"] == "server" and engine["server_load_s"] > 0 and engine["host"] == "127.0.0.1"
    assert engine["server"] == "a33e6a0"  # told from its /props
    # bootstrap built the server beside main: the manifest names how, as it does for main
    assert s.store.manifest["binary"]["build_flags"]["targets"][0] == "main"


def test_the_server_listens_on_loopback_only_and_is_gone_after_the_run(server_run):
    s, _, seen = server_run
    assert seen["listeners"] == ["0100007F"]  # 127.0.0.1, nothing on 0.0.0.0 or ::
    assert not psutil.pid_exists(s.store.manifest["engine"]["pid"]) or \
        psutil.Process(s.store.manifest["engine"]["pid"]).status() == psutil.STATUS_ZOMBIE


def test_raw_files_hold_the_answer_as_it_came_and_the_server_s_log_of_it(server_run):
    s, result, _ = server_run
    raw = s.store.dir / "raw" / result.records[0][F.RAW_DIR]
    index = json.loads((raw / "stream.json").read_text())
    data_events = [e for e in index["events"] if e[1] == "data"]
    assert len(data_events) == result.records[0][F.OUTPUT_TOKENS] + 1  # one per token, then the last
    assert (raw / "stream.bin").read_bytes().startswith(b"HTTP/1.1 200")
    assert index["request"]["n_predict"] == result.records[0][F.MAX_TOKENS]
    assert b"print_timings" in (raw / "stderr.log").read_bytes()  # the server's log lines of this query


class KillServerAt(Sampler):
    """Kills the process it is asked to watch when the `n`th query starts: the server, mid-run."""

    name = "killer"

    def __init__(self, n: int):
        self.n, self.seen, self.killed = n, 0, None

    def start(self, pid, t0_ns):
        self.seen += 1
        if self.seen == self.n:
            self.killed = pid
            os.kill(pid, signal.SIGKILL)


def test_a_server_killed_mid_run_fails_that_query_restarts_and_the_rest_are_ok(tmp_path, llama_bin_dir, tiny_model):
    killer = KillServerAt(2)
    s = Session.create(config(llama_bin_dir, tiny_model, tmp_path / "out", limit=1), log=lambda m: None,
                       samplers=[killer])
    result = s.run()
    recs = result.records
    assert result.exit_code == exitcodes.FAILED_QUERIES
    assert [r[F.STATUS] for r in recs] == ["ok", "crashed", "ok", "ok", "ok"]
    dead = recs[1]
    assert dead[F.SIGNAL] == signal.SIGKILL and "killed by signal 9 (SIGKILL)" in dead[F.ERROR], dead[F.ERROR]
    assert dead[F.SERVER_PID] == killer.killed and dead[F.STDERR_TAIL]
    restart = dead[F.SERVER_RESTART]
    assert restart["previous_pid"] == killer.killed and restart["load_s"] > 0
    assert all(r[F.SERVER_PID] == restart["pid"] for r in recs[2:])
    assert recs[0][F.SERVER_PID] == killer.killed


def test_a_server_that_does_not_come_up_names_its_log(tmp_path, llama_bin_dir):
    not_a_model = tmp_path / "broken.gguf"
    not_a_model.write_bytes(b"GGUF" + b"\0" * 64)
    engine = LlamaServer(None, True, 512)
    engine.run_dir = tmp_path / "run"
    with pytest.raises(UserError) as err:
        engine.open(config(llama_bin_dir, not_a_model, tmp_path), log=lambda m: None)
    log = tmp_path / "run" / "server" / "server.log"
    assert "did not come up" in err.value.message and str(log) in err.value.message
    assert log.is_file() and log.stat().st_size > 0


def recorded(out: Path, n: int) -> bool:
    """The run folder under `out` holds at least `n` records."""
    runs = list(out.glob("*/queries.jsonl")) if out.exists() else []
    return bool(runs) and len(runs[0].read_text().splitlines()) >= n


def test_a_run_killed_outright_takes_its_server_along_and_resumes(tmp_path, llama_bin_dir, tiny_model):
    out = tmp_path / "out"
    env = dict(os.environ, EDGEBENCH_ROOT=str(tmp_path))
    cmd = [sys.executable, "-m", "orchestrator", "run", "--engine", "server", "--binary", str(llama_bin_dir / "server"),
           "--model", str(tiny_model), "--reports-dir", str(out), "--workload", str(DEFAULT), "--limit", "4",
           "--threads", "1", "--gpu-sampler", "none"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    wait_for(lambda: recorded(out, 2) or proc.poll() is not None, timeout=HANG_S, step=0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run = next(p for p in out.iterdir() if p.is_dir())
    pid = json.loads((run / "manifest.json").read_text())["engine"]["pid"]
    assert wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE,
                    timeout=HANG_S)
    res = subprocess.run([sys.executable, "-m", "orchestrator", "run", "--resume", str(run)], env=env,
                         capture_output=True, text=True, timeout=HANG_S)
    assert res.returncode == 0, res.stderr + res.stdout
    recs = [json.loads(line) for line in (run / "queries.jsonl").read_text().splitlines()]
    assert len({r["query_id"] for r in recs}) == 20 and all(r["status"] == "ok" for r in recs)
    assert json.loads((run / "manifest.json").read_text())["engine"]["pid"] != pid


def test_a_query_that_needs_a_larger_context_gets_a_server_with_one(tmp_path, llama_bin_dir, tiny_model):
    wl = tmp_path / "w.jsonl"
    wl.write_text(json.dumps({"id": "q1", "category": "simple", "prompt": "Name a colour.", "max_tokens": 8,
                              "prompt_tokens_est": 6}) + "\n")
    s = Session.create(config(llama_bin_dir, tiny_model, tmp_path / "out", wl), log=lambda m: None,
                       variants=[{"max_tokens": 8}, {"max_tokens": 600}], samplers=[])
    first, second = s.run().records
    assert first[F.STATUS] == second[F.STATUS] == "ok"
    assert first[F.CTX_SIZE] == 512 and second[F.CTX_SIZE] == 640 and second[F.OUTPUT_TOKENS] == 600
    assert "other server settings" in second[F.SERVER_RESTART]["reason"]
    assert second[F.SERVER_RESTART]["previous_pid"] == first[F.SERVER_PID] != second[F.SERVER_PID]
    assert F.SERVER_RESTART not in first


def test_sigterm_stops_the_run_and_its_server_with_the_signal_s_exit_code(tmp_path, llama_bin_dir, tiny_model):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "orchestrator", "run", "--engine", "server", "--binary", str(llama_bin_dir / "server"),
           "--model", str(tiny_model), "--reports-dir", str(out), "--workload", str(DEFAULT), "--threads", "1",
           "--gpu-sampler", "none"]
    proc = subprocess.Popen(cmd, env=dict(os.environ, EDGEBENCH_ROOT=str(tmp_path)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

    wait_for(lambda: recorded(out, 1) or proc.poll() is not None, timeout=HANG_S, step=0.02)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(HANG_S) == 128 + signal.SIGTERM
    run = next(p for p in out.iterdir() if p.is_dir())
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["interrupted_by"] == "signal SIGTERM"
    assert not psutil.pid_exists(manifest["engine"]["pid"])  # stopped and reaped, not left listening


def test_today_s_llama_server_answer_as_recorded_places_every_token(vocab_gguf):
    """An answer today's llama-server (llama-cpp-python 0.3.36's tree, CPU build) streamed to this
    client for the default workload's simple-10 on the tiny twin: 30 tokens, two of them held back
    as bytes of split characters, named by no event."""
    from orchestrator.engine.vocab import token_pieces
    from orchestrator.ggufile import read_header

    recorded = (Path(__file__).parent / "data" / "servers" / "llama-server-stream.http").read_bytes()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)

    def serve():
        conn, _ = sock.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(recorded)
        sock.close()

    threading.Thread(target=serve, daemon=True).start()
    res = sse.exchange(sock.getsockname()[1], "POST", "/completion", b"{}", HANG_S, HANG_S)
    events = res.json_events()
    final = events[-1][1]
    assert res.complete and final["stop"] and final["timings"]["predicted_n"] == 30
    times, how = token_times(events[:-1], final, token_pieces(read_header(vocab_gguf, tensors=False)[0]))
    assert len(times) == 30 and how == {"method": "token_ids", "matched": True, "held": 2}
    assert sum(len(ev["tokens"]) for _, ev in events[:-1]) == 28  # what counting named ids would have said


def test_today_s_llama_server_runs_the_same_queries_live(tmp_path, llama_current_dir, tiny_model):
    """Today's llama-server (bootstrap --engine current) through the same engine: every query ok,
    every token placed from its events' ids, told apart from a33e6a0's by its /props."""
    cfg = RunConfig(binary=llama_current_dir / "llama-server", model=tiny_model, workload=DEFAULT,
                    out_dir=tmp_path / "out", engine="server", threads=1, gpu_sampler="none", idle_window_s=0,
                    limit=1)
    s = Session.create(cfg, log=lambda m: None, samplers=[ProcessSampler(0.5)])
    result = s.run()
    assert result.exit_code == exitcodes.OK and len(result.records) == 5
    for r in result.records:
        assert r[F.STATUS] == "ok" and r[F.OUTPUT_TOKENS] == r[F.MAX_TOKENS], r.get(F.ERROR)
        v = r[F.VALIDATION]
        assert v["checks"]["token_count"]["ok"] and v["checks"]["stream_matches_output"]["ok"], v
    engine = s.store.manifest["engine"]
    assert engine["server"] != "a33e6a0" and engine["host"] == "127.0.0.1" and engine["server_load_s"] > 0
