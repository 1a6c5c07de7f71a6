"""The run session through the fake executor (tests/fakemain.py): warm-ups, repetitions and
variants, exactly-once resume, checked resumes, run-lived samplers, failures and exit codes.
No llama.cpp here: each test runs in milliseconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakemain import FakeMain, fake_binary, write_vocab_model

from orchestrator import exitcodes, stats
from orchestrator.config import RunConfig
from orchestrator.engine.base import Engine
from orchestrator.errors import UserError
from orchestrator.sampling.base import Sampler
from orchestrator.session import Session
from orchestrator.store import RunReader, RunStore, record_key


def workload(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def q(i: int, category="simple", prompt=None, n=4, est=8) -> dict:
    return {"id": f"q{i}", "category": category, "prompt": prompt or f"question number {i} please",
            "max_tokens": n, "prompt_tokens_est": est}


@pytest.fixture
def setup(tmp_path):
    model = write_vocab_model(tmp_path / "vocab.gguf")
    binary = fake_binary(tmp_path / "main")
    wl = workload(tmp_path / "w.jsonl", [q(1), q(2, "complex")])

    def cfg(**kw):
        return RunConfig(binary=binary, model=model, workload=kw.pop("workload", wl), out_dir=tmp_path / "out", **kw)

    return cfg


class CountingSampler(Sampler):
    name, kind = "counting", "gpu"

    def __init__(self):
        self.opened = self.closed = self.started = 0

    def open(self):
        self.opened += 1

    def close(self):
        self.closed += 1

    def start(self, pid, t0_ns):
        self.started += 1

    def stop(self):
        return [{"t_s": 0.01, "gpu_load_pct": 40.0}, {"t_s": 0.2, "gpu_load_pct": 60.0}]

    def aggregate(self, samples, timeline):
        return {"gpu_load_peak_pct": max(s["gpu_load_pct"] for s in samples)}

    def info(self):
        return {"name": self.name, "kind": self.kind, "opened": self.opened, "achieved_interval_s": 0.19}


def test_warmups_and_repetitions_are_recorded_marked_and_counted_apart(setup):
    fake = FakeMain()
    s = Session.create(setup(), warmup=1, repeat=2, executor=fake, log=lambda m: None)
    result = s.run()
    recs = result.records
    assert len(recs) == 6 and len(fake.calls) == 6
    assert [(r["query_id"], r["phase"], r["repetition"]) for r in recs] == [
        ("q1", "warmup", 0), ("q1", "measure", 0), ("q1", "measure", 1),
        ("q2", "warmup", 0), ("q2", "measure", 0), ("q2", "measure", 1)]
    assert all(r["status"] == "ok" and r["validation"]["ok"] for r in recs)
    # the fake's clock: 50 ms load, 1 ms per prompt token, 20 ms per token
    assert recs[1]["load_s"] == pytest.approx(0.050) and recs[1]["tpot_s"] == pytest.approx(0.020)
    rows = stats.by_category(recs, ("simple", "complex"))
    assert [r["n"] for r in rows] == [2, 2] and [r["repetitions"] for r in rows] == [2, 2]
    assert rows[0]["total_cv"] == pytest.approx(0.0, abs=1e-6)  # identical synthetic repetitions
    assert result.exit_code == exitcodes.OK
    # every attempt has a raw folder of its own
    assert len({r["raw_dir"] for r in recs}) == 6
    m = RunReader(s.store.dir).manifest
    assert m["schema_version"] == 2 and m["status"] == "finished" and len(m["plan"]["items"]) == 6


def test_variants_put_one_query_at_several_output_limits_into_one_folder(setup):
    fake = FakeMain()
    s = Session.create(setup(), variants=[{"max_tokens": 3}, {"max_tokens": 9}], executor=fake, log=lambda m: None)
    recs = s.run().records
    assert sorted((r["query_id"], r["variant_id"], r["output_tokens"]) for r in recs) == [
        ("q1", "max_tokens=3", 3), ("q1", "max_tokens=9", 9), ("q2", "max_tokens=3", 3), ("q2", "max_tokens=9", 9)]
    assert {r["variant"]["max_tokens"] for r in recs} == {3, 9}
    assert sorted(c[c.index("-n") + 1] for c in fake.calls) == ["3", "3", "9", "9"]
    with pytest.raises(UserError, match="cannot set prompt"):
        Session.create(setup(), variants=[{"prompt": "x"}], executor=fake)


def test_interrupted_session_resumes_each_item_exactly_once(setup):
    def stop_third(argv, count=[0]):  # noqa: B006 - a call counter
        count[0] += 1
        if count[0] == 3:
            raise KeyboardInterrupt

    first = Session.create(setup(), warmup=1, repeat=2, executor=FakeMain(stop_third), log=lambda m: None)
    with pytest.raises(KeyboardInterrupt):
        first.run()
    m = RunReader(first.store.dir).manifest
    assert m["status"] == "interrupted" and m["interrupted_by"] == "signal SIGINT" and m["n_queries"] == 2
    fake = FakeMain()
    again = Session.resume(first.store.dir, executor=fake, log=lambda m: None)
    assert len(again.pending()) == 4
    recs = again.run().records
    assert len(fake.calls) == 4 and len(recs) == 6
    assert len({record_key(r) for r in recs}) == 6
    assert RunReader(first.store.dir).manifest["status"] == "finished"


def test_resume_refuses_a_changed_model_naming_both_digests_unless_forced(setup, tmp_path):
    s = Session.create(setup(), executor=FakeMain(), log=lambda m: None)
    old = s.store.manifest["model"]["sha256"]
    with open(setup().model, "ab") as f:
        f.write(b"\0" * 64)  # same figures and vocabulary, other bytes
    from orchestrator.net import sha256_file

    new = sha256_file(setup().model)
    with pytest.raises(UserError) as e:
        Session.resume(s.store.dir, executor=FakeMain())
    assert "model SHA-256" in e.value.message and old in e.value.message and new in e.value.message
    assert "--force" in e.value.fix
    logged = []
    forced = Session.resume(s.store.dir, force=True, executor=FakeMain(), log=logged.append)
    diffs = forced.store.manifest["forced_resumes"][0]["differences"]
    assert diffs == [{"field": "model SHA-256", "old": old, "new": new}]
    assert any("model SHA-256" in m for m in logged)


def test_a_query_that_cannot_fit_is_recorded_and_the_others_still_run(setup, tmp_path):
    wl = workload(tmp_path / "long.jsonl", [q(1), q(2, est=3000), q(3, "complex")])
    result = Session.create(setup(workload=wl), executor=FakeMain(), log=lambda m: None).run()
    status = {r["query_id"]: r["status"] for r in result.records}
    assert status == {"q1": "ok", "q2": "too_long", "q3": "ok"}
    assert result.n_failed == 1 and result.exit_code == exitcodes.FAILED_QUERIES


def test_crashes_and_bad_exits_are_recorded_with_their_status(setup, tmp_path):
    wl = workload(tmp_path / "bad.jsonl", [q(1, prompt="please CRASH now"), q(2, prompt="EXIT3 here"), q(3)])
    recs = {r["query_id"]: r for r in
            Session.create(setup(workload=wl), executor=FakeMain(), log=lambda m: None).run().records}
    assert recs["q1"]["status"] == "crashed" and recs["q1"]["signal"] == 11
    assert recs["q2"]["status"] == "error" and recs["q2"]["exit_code"] == 3
    assert recs["q3"]["status"] == "ok"


def test_samplers_live_for_the_run_and_report_through_info_and_aggregate(setup):
    counting = CountingSampler()

    def stop_second(argv, count=[0]):  # noqa: B006
        count[0] += 1
        if count[0] == 2:
            raise SystemExit(143)

    s = Session.create(setup(idle_window_s=0), repeat=2, samplers=[counting], executor=FakeMain(), log=lambda m: None)
    recs = s.run().records
    assert (counting.opened, counting.closed, counting.started) == (1, 1, 4)
    assert all(r["gpu_load_peak_pct"] == 60.0 for r in recs)
    assert RunReader(s.store.dir).manifest["samplers"] == [counting.info()]
    samples = RunReader(s.store.dir).samples()
    assert len(samples) == 8 and {x["sampler"] for x in samples} == {"counting"}
    # closed on the way out of an interruption too, and the reason is recorded
    other = CountingSampler()
    s2 = Session.create(setup(idle_window_s=0), repeat=2, samplers=[other], executor=FakeMain(stop_second),
                        log=lambda m: None)
    with pytest.raises(SystemExit):
        s2.run()
    assert (other.opened, other.closed) == (1, 1)
    assert RunReader(s2.store.dir).manifest["interrupted_by"] == "signal SIGTERM"


class BoardPower(Sampler):
    """A GPU/board sampler at its interface: the board draws 1.0 and 1.2 W while it watches the idle
    window (its first watch), then 3 W throughout every query; energy is sampling/derive.py's."""

    name, kind = "board", "gpu"

    def __init__(self):
        self.watches = []

    def start(self, pid, t0_ns):
        self.watches.append(pid)

    def stop(self):
        if len(self.watches) == 1:
            return [{"t_s": 0.0, "power_total_mw": 1000.0}, {"t_s": 0.005, "power_total_mw": 1200.0}]
        return [{"t_s": 0.06, "power_total_mw": 3000.0}, {"t_s": 0.1, "power_total_mw": 3000.0}]

    def aggregate(self, samples, timeline):
        from orchestrator.sampling.derive import derive

        return derive(samples, timeline)


def test_idle_power_is_measured_once_before_the_first_query_and_energy_is_given_net_of_it(setup):
    def stop_third(argv, count=[0]):  # noqa: B006 - a call counter
        count[0] += 1
        if count[0] == 3:
            raise KeyboardInterrupt

    board = BoardPower()
    s = Session.create(setup(idle_window_s=0.01), repeat=2, samplers=[board], executor=FakeMain(stop_third),
                       log=lambda m: None)
    with pytest.raises(KeyboardInterrupt):
        s.run()
    assert len(board.watches) == 1 + 2  # the idle window, then two queries
    # a resumed run keeps the first session's idle power and does not watch the idle board again
    recs = Session.resume(s.store.dir, samplers=[board], executor=FakeMain(), log=lambda m: None).run().records
    assert len(board.watches) == 1 + 4 and len(recs) == 4
    idle = RunReader(s.store.dir).manifest["idle_power"]
    assert idle == {"sampler": "board", "window_s": 0.01, "n": 2, "power_mw": 1100.0,
                    "std_mw": pytest.approx(141.421, abs=1e-3)}
    for r in recs:
        # 3 W held over the whole query; idle's 1.1 W taken off over the same time
        assert r["energy_j"] == pytest.approx(3.0 * r["total_s"], abs=1e-5)
        assert r["idle_power_mw"] == 1100.0
        assert r["energy_net_j"] == pytest.approx((3.0 - 1.1) * r["total_s"], abs=1e-5)
        assert r["energy_net_per_token_j"] == pytest.approx(r["energy_net_j"] / r["output_tokens"], abs=1e-5)
        # the readings span 0.04 s of a query of about 0.14 s: flagged
        assert r["energy_coverage"] == pytest.approx(0.04 / r["total_s"], abs=1e-4) and r["energy_coverage_low"]


def test_no_idle_window_without_a_power_sampler_or_when_set_to_zero(setup):
    s = Session.create(setup(), executor=FakeMain(), log=lambda m: None)  # the process sampler only
    s.run()
    assert "idle_power" not in RunReader(s.store.dir).manifest
    board = BoardPower()
    s0 = Session.create(setup(idle_window_s=0), samplers=[board], executor=FakeMain(), log=lambda m: None)
    recs = s0.run().records
    assert "idle_power" not in RunReader(s0.store.dir).manifest and len(board.watches) == 2
    # gross energy still, no net figure
    assert all(r["energy_j"] is not None and r["energy_net_j"] is None for r in recs)


def test_the_process_sampler_is_reused_across_queries_and_its_peak_comes_from_aggregate(setup):
    s = Session.create(setup(), repeat=2, executor=FakeMain(), log=lambda m: None)
    recs = s.run().records
    # the fake reports a kernel peak of 50 MB; this test process's own RSS was sampled
    for r in recs:
        assert r["peak_rss_bytes"] == max(50_000_000, r["peak_rss_sampled_bytes"])
    info = RunReader(s.store.dir).manifest["samplers"][0]
    assert info["name"] == "process" and info["n_samples"] == sum(r["n_samples"] for r in recs) > 0


def test_reader_reads_a_folder_being_written_without_touching_it(setup):
    s = Session.create(setup(), executor=FakeMain(), log=lambda m: None)
    s.run()
    path = s.store.dir / "queries.jsonl"
    torn = path.read_bytes() + b'{"query_id": "q9", "att'
    path.write_bytes(torn)
    with s.store.lock():  # a writer holds the run: the reader needs no lock
        reader = RunReader(s.store.dir)
        assert [r["query_id"] for r in reader.queries()] == ["q1", "q2"]
        assert len(reader.samples()) > 0
    assert path.read_bytes() == torn  # nothing repaired on disk


def test_format_1_folders_are_read_with_defaults_and_refused_for_resume(tmp_path):
    run = tmp_path / "old"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({"schema_version": 1, "edgebench_version": "0.1.0"}))
    (run / "queries.jsonl").write_text(json.dumps({"query_id": "a", "attempt": "x", "status": "ok",
                                                   "category": "simple"}) + "\n")
    rec = RunReader(run).queries()[0]
    assert (rec["phase"], rec["repetition"], rec["variant"], rec["variant_id"]) == ("measure", 0, {}, "")
    with pytest.raises(UserError) as e:
        RunStore.open(run)
    assert "schema_version 1" in e.value.message and "format 2" in e.value.message


class EchoEngine(Engine):
    """A second engine at the seam (engine/base.py): it answers each query with its prompt's
    length as the only measured figure, writes one file into its scratch folder and returns
    bytes for another, and keeps something open for the whole run (as a resident server would).
    The session and the store must need nothing more."""

    name = "echo"
    title = "echo, for the test"

    def __init__(self):
        self.workdirs = []
        self.events = []

    def open(self, cfg, log):
        self.events.append("open")
        return {"load_s": 0.25}

    def close(self):
        self.events.append("close")

    def invocation(self, cfg, query, prompt_tokens, workdir):
        from orchestrator.engine.base import Invocation

        return Invocation(["echo", query.prompt], 512, prompt_tokens, workdir)

    def measure(self, inv, cfg, samplers):
        from orchestrator.engine.base import Outcome

        self.workdirs.append(inv.workdir)
        self.events.append("measure")
        (inv.workdir / "log.txt").write_text("echoed")
        (inv.workdir / "leftover").write_text("not data")
        return Outcome({"status": "ok", "error": None, "output_tokens": len(inv.argv[1])}, timeline=None,
                       files={"stderr.log": inv.workdir / "log.txt"}, blobs={"stream.bin": inv.argv[1].encode()})


def test_another_engine_plugs_into_the_session_and_the_store_writes_what_it_returns(setup):
    from orchestrator.store import RAW, RAW_STDERR, RAW_STREAM

    engine = EchoEngine()
    s = Session.create(setup(), repeat=2, samplers=[], engine=engine, log=lambda m: None)
    recs = s.run().records
    assert [(r["query_id"], r["repetition"], r["status"], r["output_tokens"]) for r in recs] == [
        ("q1", 0, "ok", 24), ("q1", 1, "ok", 24), ("q2", 0, "ok", 24), ("q2", 1, "ok", 24)]
    assert all(r["max_tokens"] == 4 and r["category"] in ("simple", "complex") and "samplers" not in r for r in recs)
    assert all(r["engine"] == "echo" for r in recs)
    # opened once before the first query, closed after the last; what open() learnt is in the manifest
    assert engine.events == ["open", *["measure"] * 4, "close"]
    assert s.store.manifest["engine"] == {"name": "echo", "title": "echo, for the test", "load_s": 0.25}
    raws = [s.store.dir / RAW / r["raw_dir"] for r in recs]
    assert len(set(raws)) == 4
    for raw in raws:
        assert sorted(p.name for p in raw.iterdir()) == [RAW_STDERR, RAW_STREAM]
        assert (raw / RAW_STDERR).read_text() == "echoed"
    assert (raws[2] / RAW_STREAM).read_bytes() == b"question number 2 please"
    # the engine worked in folders the store handed out, and none is left
    assert all(not w.exists() for w in engine.workdirs)
    assert sorted(p.name for p in s.store.dir.iterdir()) == [".lock", "manifest.json", "queries.jsonl", "raw",
                                                             "samples.jsonl"]
