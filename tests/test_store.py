"""The run folder on real files: what it writes, what it refuses, and what survives a kill."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from waiting import HANG_S, wait_for

from orchestrator.errors import UserError
from orchestrator.store import SAMPLES, SCHEMA_VERSION, RunReader, RunStore, new_run_id


@pytest.fixture
def store(tmp_path) -> RunStore:
    return RunStore.create(tmp_path / "run", {"model": "tiny", "interval_s": 0.01})


def record(qid: str, attempt: str, **extra) -> dict:
    return {"query_id": qid, "attempt": attempt, "status": "ok", "category": "simple", **extra}


def recorded_ids(store: RunStore) -> set[str]:
    """The queries with a record, failed attempts included: a failure is a result (asv)."""
    return {r["query_id"] for r in store.read_queries()}


def committed_samples(store: RunStore) -> list[dict]:
    return RunReader(store.dir).samples()


def test_run_ids_are_utc_sortable_and_distinct():
    t = datetime(2026, 11, 26, 7, 15, 30, tzinfo=timezone.utc)
    rid = new_run_id(t)
    assert re.fullmatch(r"20261126-071530-[0-9a-f]{4}", rid)
    # The same instant given in another zone names the same second.
    assert new_run_id(t.astimezone(timezone(timedelta(hours=9))))[:15] == "20261126-071530"
    assert new_run_id(t) < new_run_id(t + timedelta(seconds=1))
    assert len({new_run_id(t) for _ in range(50)}) > 40
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{4}", new_run_id())


def test_create_writes_a_versioned_manifest_and_refuses_a_used_folder(tmp_path):
    run = tmp_path / "reports" / "r1"
    s = RunStore.create(run, {"model": Path("/m/tiny.gguf"), "schema_version": 99})
    on_disk = json.loads((run / "manifest.json").read_text())
    assert on_disk == {"schema_version": SCHEMA_VERSION, "model": "/m/tiny.gguf"} == s.manifest
    assert next(iter(on_disk)) == "schema_version"  # the header comes first
    assert (run / "queries.jsonl").read_bytes() == b"" and (run / "samples.jsonl").read_bytes() == b""
    assert (run / "raw").is_dir()
    with pytest.raises(UserError) as e:
        RunStore.create(run, {})
    assert "--resume" in e.value.fix and str(run) in e.value.fix
    empty = tmp_path / "empty"
    empty.mkdir()
    RunStore.create(empty, {})  # an empty folder is fine, e.g. one made by the user


def test_update_manifest_merges_and_rewrites_atomically(store):
    store.update_manifest(finished=True, n_queries=3)
    reopened = RunStore.open(store.dir)
    assert reopened.manifest == {
        "schema_version": SCHEMA_VERSION, "model": "tiny", "interval_s": 0.01, "finished": True, "n_queries": 3,
    }
    names = sorted(p.name for p in store.dir.iterdir())
    assert names == [".lock", "manifest.json", "queries.jsonl", "raw", "samples.jsonl"]  # no temp file left
    with pytest.raises(ValueError):
        store.update_manifest(schema_version=SCHEMA_VERSION + 1)


def test_each_query_record_is_one_line_whatever_it_holds(store):
    awkward = [
        record("q/1", "a1", text='line one\nline two\r\n"quoted" \\ back'),
        record("café 東京", "a2", text="emoji 🦙, NEL \x85, LS \u2028, PS \u2029, NUL \x00"),
        record("q3", "a3", tbt_s=[0.01, 0.02], nested={"k": [1, None, "x"]}),
        record("q4", "a4", text="lone surrogate \udcff from surrogateescape"),
    ]
    for r in awkward:
        store.append_query(r)
    data = (store.dir / "queries.jsonl").read_bytes()
    assert data.count(b"\n") == len(awkward) and data.endswith(b"\n")
    assert "café 東京".encode() in data  # ensure_ascii=False: readable as written
    assert store.read_queries() == awkward
    assert recorded_ids(store) == {"q/1", "café 東京", "q3", "q4"}


def test_nan_and_inf_are_refused_before_anything_is_written(store):
    store.append_query(record("q1", "a1"))
    before = (store.dir / "queries.jsonl").read_bytes()
    with pytest.raises(ValueError, match=r"record\['tbt_s'\]\[1\] is NaN"):
        store.append_query(record("q2", "a2", tbt_s=[0.1, float("nan")]))
    with pytest.raises(ValueError, match="infinite"):
        store.append_query(record("q2", "a2", ttft_s=float("inf")))
    with pytest.raises(ValueError, match="NaN"):
        store.append_samples("q2", "a2", [{"t_s": 0.0, "cpu_pct": float("-inf")}])
    assert (store.dir / "queries.jsonl").read_bytes() == before
    with pytest.raises(ValueError, match="attempt"):
        store.append_query({"query_id": "q3"})


@pytest.mark.parametrize("name", ["queries.jsonl", "samples.jsonl"])
def test_open_cuts_a_torn_last_line_and_keeps_every_complete_one(store, name):
    for i in range(3):
        store.append_samples(f"q{i}", f"a{i}", [{"t_s": 0.0}, {"t_s": 0.5}])
        store.append_query(record(f"q{i}", f"a{i}", text="x\ny"))
    path = store.dir / name
    complete = path.read_bytes()
    half = json.dumps(record("q3", "a3", text="never finished")).encode()[:25]
    with open(path, "ab") as fh:
        fh.write(half)

    reopened = RunStore.open(store.dir)
    assert path.read_bytes() == complete
    assert recorded_ids(reopened) == {"q0", "q1", "q2"}
    assert len(committed_samples(reopened)) == 6
    reopened.append_query(record("q3", "a3"))
    reopened.append_samples("q3", "a3", [{"t_s": 0.0}])
    assert recorded_ids(reopened) == {"q0", "q1", "q2", "q3"} and len(committed_samples(reopened)) == 7


def test_open_keeps_a_whole_record_that_only_lost_its_newline(store):
    store.append_query(record("q0", "a0"))
    with open(store.dir / "queries.jsonl", "ab") as fh:
        fh.write(json.dumps(record("q1", "a1")).encode())
    assert recorded_ids(RunStore.open(store.dir)) == {"q0", "q1"}
    assert (store.dir / "queries.jsonl").read_bytes().count(b"\n") == 2


def test_a_damaged_line_in_the_middle_is_reported_not_skipped(store):
    store.append_query(record("q0", "a0"))
    with open(store.dir / "queries.jsonl", "ab") as fh:
        fh.write(b"{not json\n")
    store.append_query(record("q2", "a2"))
    with pytest.raises(UserError, match="line 2"):
        store.read_queries()


def test_open_refuses_a_folder_without_manifest_or_of_another_schema(store, tmp_path):
    with pytest.raises(UserError) as e:
        RunStore.open(tmp_path / "nowhere")
    assert "manifest.json" in e.value.message and "--resume" in e.value.fix

    manifest = store.dir / "manifest.json"
    for version, words, fix in [(SCHEMA_VERSION + 1, "a newer", "update edgebench"), (0, "an older", "new run")]:
        manifest.write_text(json.dumps({"schema_version": version, "edgebench_version": "9.9"}))
        with pytest.raises(UserError) as e:
            RunStore.open(store.dir)
        assert words in e.value.message and f"schema_version {version}" in e.value.message
        assert "edgebench 9.9" in e.value.message and f"format {SCHEMA_VERSION}" in e.value.message
        assert fix in e.value.fix


def test_one_writer_at_a_time(store):
    other = RunStore.open(store.dir)
    with store.lock():
        with pytest.raises(UserError, match=f"another edgebench run is writing {re.escape(str(store.dir))}"):
            with other.lock():
                pass
        # open() repairs under the lock, so it must not cut a line a live writer is finishing.
        with pytest.raises(UserError, match="another edgebench run"):
            RunStore.open(store.dir)
    with other.lock():
        other.append_query(record("q0", "a0"))
    assert recorded_ids(store) == {"q0"}


def test_samples_of_an_attempt_without_a_record_are_filtered_out(store):
    store.append_samples("q0", "a0", [{"t_s": 0.0, "rss_bytes": 1}, {"t_s": 0.01, "rss_bytes": 2}])
    store.append_query(record("q0", "a0"))
    store.append_samples("q1", "killed", [{"t_s": 0.0, "rss_bytes": 3}])  # the crash came here
    store.append_samples("q1", "a1", [{"t_s": 0.0, "rss_bytes": 4}])
    store.append_query(record("q1", "a1"))

    committed = {r["attempt"] for r in store.read_queries()}
    kept = RunReader(store.dir).samples(attempts=committed)
    assert [(s["query_id"], s["attempt"], s["rss_bytes"]) for s in kept] == [
        ("q0", "a0", 1), ("q0", "a0", 2), ("q1", "a1", 4),
    ]
    assert kept == committed_samples(store)  # the reader's default: committed attempts only
    assert (store.dir / SAMPLES).read_bytes().count(b"\n") == 4  # the killed attempt's reading stays in the file
    store.append_samples("q2", "a2", [])  # nothing to write is not an error


def test_raw_dirs_are_safe_unique_and_stable(store):
    ids = ["a/b", "a:b", "a_b", "A_B", "café 東京", "東京", "..", "", " ", "x" * 300, "../../etc"]
    dirs = [store.raw_dir(i) for i in ids]
    assert len({d.name.lower() for d in dirs}) == len(ids)  # unique even on a case-blind disk
    for d in dirs:
        d.mkdir()  # a name every filesystem takes
        assert d.parent == store.dir / "raw"
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", d.name) and len(d.name) <= 80
    assert store.raw_dir("café 東京") == dirs[4]
    assert dirs[4].name.startswith("cafe-")


# Appends samples then a record, in a loop, as the runner does; big lines make the kill likely
# to land inside a write.
WRITER = """
import sys
from pathlib import Path
from orchestrator.store import RunStore
store = RunStore.open(Path(sys.argv[1]))
with store.lock():
    for i in range(100000):
        store.append_samples(f"q{i}", f"a{i}", [{"t_s": k * 0.01, "pad": "s" * 2000} for k in range(20)])
        store.append_query({"query_id": f"q{i}", "attempt": f"a{i}", "status": "ok", "category": "simple", "seq": i,
                            "text": "é\\n" * 20000})
"""


def test_a_writer_killed_mid_append_leaves_a_run_that_opens_intact(store):
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(store.dir)])
    queries = store.dir / "queries.jsonl"
    # waits for the size, not the time (the bound only ends a test whose writer died)
    wait_for(lambda: queries.stat().st_size >= 2_000_000 or child.poll() is not None, timeout=HANG_S)
    child.send_signal(signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL

    reopened = RunStore.open(store.dir)
    recs = reopened.read_queries()
    assert len(recs) >= 20
    assert [r["seq"] for r in recs] == list(range(len(recs)))
    assert all(r["text"] == "é\n" * 20000 for r in recs)
    committed = {r["attempt"] for r in recs}
    samples = RunReader(reopened.dir).samples(attempts=committed)
    assert len(samples) == 20 * len(recs)
    assert all(s["pad"] == "s" * 2000 for s in samples)
    with reopened.lock():  # the dead writer's lock went with its process
        reopened.append_query(record("after", "b0"))
    assert "after" in recorded_ids(reopened)


def test_an_attempts_raw_folder_appears_whole_and_replaces_one_left_without_a_record(store):
    """The engine works in a scratch folder; keep_raw adopts the files it names and the bytes it
    returns, drops the rest, and leaves no scratch behind."""
    stale = store.raw_dir("q0", "measure-0")
    stale.mkdir(parents=True)
    (stale / "stderr.log").write_text("an attempt a kill cut short")
    scratch = store.scratch("q0", "measure-0")
    (scratch / "stderr.log").write_text("loaded")
    (scratch / "ld").mkdir()
    (scratch / "ld" / "x.yml").write_text("n_eval: 3\n")
    (scratch / "ld" / "junk").write_text("not kept")

    kept = store.keep_raw(scratch, "q0", "measure-0",
                          {"stderr.log": scratch / "stderr.log", "llama.yml": scratch / "ld" / "x.yml",
                           "main.log": scratch / "main.log"},  # main did not write one: left out
                          {"stream.bin": b"\x00echo tokens"})
    assert kept == stale
    assert sorted(p.name for p in kept.iterdir()) == ["llama.yml", "stderr.log", "stream.bin"]
    assert (kept / "stderr.log").read_text() == "loaded" and (kept / "stream.bin").read_bytes() == b"\x00echo tokens"
    assert sorted(p.name for p in store.dir.iterdir()) == ["manifest.json", "queries.jsonl", "raw", "samples.jsonl"]


def test_resume_drops_the_scratch_of_an_attempt_a_kill_cut_short(store):
    scratch = store.scratch("q0", "measure-0")
    (scratch / "main.log").write_text("half a log")
    RunStore.open(store.dir)
    assert not (store.dir / ".scratch").exists()
