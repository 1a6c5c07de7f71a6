"""The record vocabulary (orchestrator/fields.py) against what the real writers write: every field a
writer emits is declared, every declared field is emitted by some writer, no module spells a field
name itself, and docs/ are generated from the declarations.

The writers run for real: the session with the fake executor (the engine's record, failures
included), the process sampler on a real child, and each GPU sampler's reading code fed at the OS
boundary (a fake sysfs tree, jetson-stats 4.3.2's object shapes, recorded tegrastats lines, a fake
NVML module), then sampling/derive.py over those readings."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from fakemain import FakeMain, fake_binary, write_vocab_model
from fakes.sysfs_tree import OrinSysfs

from orchestrator import fields as F
from orchestrator import fieldsdoc
from orchestrator.config import RunConfig
from orchestrator.experiments.runner import item_hook
from orchestrator.sampling import recorded
from orchestrator.sampling.derive import derive
from orchestrator.sampling.process import ProcessSampler
from orchestrator.sampling.recorded import NANO_FRAMES, NanoSysfs
from orchestrator.session import Session

TESTS = Path(__file__).resolve().parent
PKG = TESTS.parent / "orchestrator"
FAKES = TESTS / "fakes"

# Declared fields no writer in this test produces, each with where it is produced and tested.
NOT_PRODUCED_HERE = {
    F.GATE_NOTE: "the thermal gate (needs thermal zones and waiting): tests/test_experiments.py",
    F.SERVER_PID: "the server engine (needs the real server): tests/test_engine_server.py",
    F.SERVER_RESTART: "the server engine, a server killed mid-run: tests/test_engine_server.py",
}


def _run_session(tmp_path: Path) -> list[dict]:
    """Records of a real session through the fake executor: ok, failing, warm-up, repeated,
    varied and experiment-tagged attempts."""
    model = write_vocab_model(tmp_path / "vocab.gguf")
    wl = tmp_path / "w.jsonl"
    rows = [{"id": "ok1", "category": "simple", "prompt": "what is a board", "max_tokens": 4, "prompt_tokens_est": 6},
            {"id": "crash", "category": "complex", "prompt": "CRASH now", "max_tokens": 4, "prompt_tokens_est": 4},
            {"id": "hang", "category": "contextual", "prompt": "HANG here", "max_tokens": 4, "prompt_tokens_est": 4},
            {"id": "exit3", "category": "task-oriented", "prompt": "EXIT3 please", "max_tokens": 4,
             "prompt_tokens_est": 4}]
    wl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = RunConfig(binary=fake_binary(tmp_path / "main"), model=model, workload=wl, out_dir=tmp_path / "out",
                    idle_timeout_s=1.0)
    session = Session.create(cfg, warmup=1, repeat=2, variants=[{}, {"max_tokens": 3}],
                             samplers=[ProcessSampler(0.001)], executor=FakeMain(), log=lambda *a: None,
                             before_item=item_hook("vocab", "part-a"))
    return session.run().records


@pytest.fixture(scope="module")
def session_records(tmp_path_factory) -> list[dict]:
    return _run_session(tmp_path_factory.mktemp("session"))


def _process_readings() -> list[dict]:
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    sampler = ProcessSampler(0.005)
    try:
        sampler.start(child.pid, time.perf_counter_ns())
        # Two readings make the second carry dt_s; wait for them, with no bound of our own on the time.
        while not psutil.Process(child.pid).cpu_times() or len(sampler._samples) < 3:  # noqa: SLF001
            time.sleep(0.01)
    finally:
        child.communicate(b"")
        samples = sampler.stop()
    return samples


def _sysfs_readings(tmp_path: Path) -> list[dict]:
    from orchestrator.sampling.sysfs import SysfsSampler

    out = []
    for board, frames in ((NanoSysfs(tmp_path / "nano"), NANO_FRAMES), (OrinSysfs(tmp_path / "orin"), None)):
        sampler = SysfsSampler(interval_s=0.01, root=board.root)
        sampler.open()
        try:
            for frame in frames or [None]:
                if frame:
                    board.apply(frame)
                out.append(sampler._read(os.getpid()))  # noqa: SLF001 - the reading code, fed at the boundary
        finally:
            sampler.close()
    return [r for r in out if r]


def _jtop_readings(monkeypatch) -> list[dict]:
    monkeypatch.syspath_prepend(str(recorded.modules_dir()))
    monkeypatch.setenv("FAKE_JTOP_SERVICE", "active")
    monkeypatch.setenv("FAKE_JTOP_GPU_COMMS", psutil.Process().name())
    import jtop

    from orchestrator.sampling.jtop import reading, rss_unit_bytes

    client = jtop.jtop(interval=0.5)
    client.start()
    try:
        return [reading(client, os.getpid(), rss_unit_bytes(jtop.__version__))]
    finally:
        client.close()


def _tegrastats_readings() -> list[dict]:
    from orchestrator.sampling.tegrastats_format import parse_line

    out = []
    for name in ("nano_root.txt", "nano_user.txt", "orin_jp5.txt", "orin_jp6.txt", "rails_reordered.txt"):
        for line in recorded.tegrastats_lines(name).read_text().splitlines():
            if line.strip():
                out.append(parse_line(line))
    # a field a newer L4T adds is kept raw, not dropped
    out.append(parse_line(line.rstrip() + " NVDLA0 off FUTURE_THING 7%"))
    return out


def _nvml_readings(monkeypatch) -> list[dict]:
    monkeypatch.syspath_prepend(str(FAKES / "modules"))
    monkeypatch.setenv("FAKE_NVML_GPU_COMMS", psutil.Process().name())
    from orchestrator.sampling.nvml import NvmlSampler

    sampler = NvmlSampler(interval_s=0.1)
    sampler.open()
    try:
        return [sampler._read(os.getpid())]  # noqa: SLF001 - the reading code, fed at the boundary
    finally:
        sampler.close()


@pytest.fixture
def gpu_readings(tmp_path, monkeypatch) -> dict[str, list[dict]]:
    return {"sysfs": _sysfs_readings(tmp_path), "jtop": _jtop_readings(monkeypatch),
            "tegrastats": _tegrastats_readings(), "nvml": _nvml_readings(monkeypatch)}


def _stamped(readings: list[dict]) -> list[dict]:
    """Readings placed on a query's timeline, as a sampler stamps them."""
    return [{F.T_S: 0.1 * (i + 1), **r} for i, r in enumerate(readings)]


TIMELINE = {"t_echo_s": 0.05, "t_first_token_s": 0.25, "t_last_token_s": 0.6, "t_exit_s": 0.7,
            "output_tokens": 8, "kernel_peak_rss_bytes": 1, "n_gpu_layers": 99, F.IDLE_POWER_MW: 500.0}


def test_every_field_a_writer_emits_is_declared(session_records, gpu_readings):
    emitted_records = {k for r in session_records for k in r}
    assert F.undeclared(F.RECORD, emitted_records) == []
    readings = _process_readings() + [r for rs in gpu_readings.values() for r in _stamped(rs)]
    assert readings, "no reading was taken"
    stored = [{F.R_QUERY_ID: "q", F.R_ATTEMPT: "a", F.R_SAMPLER: "s", **r} for r in readings]
    assert F.undeclared(F.READING, {k for r in stored for k in r}) == []
    for name, rs in gpu_readings.items():
        figures = derive(_stamped(rs), TIMELINE)
        assert F.undeclared(F.RECORD, figures) == [], name
        if any(F.POWER_TOTAL_MW in r for r in rs):  # energy, its coverage and its net are figures, not names
            assert figures[F.ENERGY_NET_J] is not None and figures[F.ENERGY_COVERAGE] is not None, name


def test_every_declared_field_is_produced_by_a_writer(session_records, gpu_readings):
    """A reader may only ask for what some writer writes: a declared field that no real writer
    produces is a name a report would wait for forever."""
    produced_records = {k for r in session_records for k in r}
    produced_readings = {k for r in _process_readings() for k in r} | {F.R_QUERY_ID, F.R_ATTEMPT, F.R_SAMPLER}
    for rs in gpu_readings.values():
        produced_records |= set(derive(_stamped(rs), TIMELINE))
        produced_readings |= {k for r in rs for k in r}
    produced_readings |= {F.DISCARD}  # experiments/discard.py marks readings; tests/test_experiments.py runs it
    for table, produced in ((F.RECORD, produced_records), (F.READING, produced_readings)):
        missing = []
        for f in table.values():
            hit = any(f.regex.match(n) for n in produced) if f.is_pattern else f.name in produced
            if not hit and f.name not in NOT_PRODUCED_HERE:
                missing.append(f.name)
        assert missing == [], f"declared but produced by no writer: {missing}"


# Modules that read or write records and readings: they take every field name from fields.py.
NAMED_BY_VOCABULARY = ["report/analysis.py", "report/figures.py", "report/export.py", "report/load.py",
                       "report/render.py", "stats.py", "summary.py", "sampling/derive.py", "sampling/process.py",
                       "engine/llama_main.py", "engine/llama_server.py", "engine/metrics.py", "session.py",
                       "experiments/runner.py"]
# Words that are field names and also something else in those modules: not a record field where
# they appear there. Global ones, then (module, word) pairs.
OTHER_MEANINGS = {
    "status",  # the manifest's and an experiment part's state; a check's verdict key in jtop's GPU dict
    "llama",  # a validation check's detail: llama.cpp's figure beside the stream's
    "experiment",  # the manifest's experiment entry
    "error", "signal",  # a status value; a sampler's own bookkeeping
    "output_tokens", "t_echo_s",  # keys of the samplers' timeline (sampling/base.py), named after the fields
}
OTHER_IN = {
    ("experiments/runner.py", "part"): "the manifest's experiment entry {name, part, plan}",
    ("experiments/runner.py", "max_tokens"): "a recorded plan's key (experiments/plans.py)",
    ("report/load.py", "run_id"): "the manifest's run id",
    ("report/export.py", "run_id"): "the manifest's run id",
    ("summary.py", "category"): "the terminal table's column heading",
    ("session.py", "run_id"): "the manifest's run id",
    ("session.py", "ignore_eos"): "the manifest's run-wide --ignore-eos",
    ("session.py", "samplers"): "the manifest's facts of each sampler",
    ("engine/llama_server.py", "ignore_eos"): "the server's request parameter; main's YAML key in `llama`",
    ("engine/llama_server.py", "ctx_size"): "main's YAML key in `llama`, given the server's context",
}


def _string_constants(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, ast.Module | ast.FunctionDef | ast.ClassDef) and n.body
                  and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings]


def test_no_module_spells_a_field_name_itself():
    names = {n for t in (F.RECORD, F.READING, F.DERIVED) for n in t if "{" not in n} - OTHER_MEANINGS
    found = []
    for rel in NAMED_BY_VOCABULARY:
        for line, value in _string_constants(PKG / rel):
            if value in names and (rel, value) not in OTHER_IN:
                found.append(f"{rel}:{line}: {value!r}")
    assert found == [], "use the constant from orchestrator/fields.py instead:\n" + "\n".join(found)


def test_the_report_reads_the_names_the_samplers_write():
    """The names issue 16 found read by the report and written by nobody stay undeclared."""
    for wrong in ("gpu_mem_bytes", "shared_mem_peak_bytes", "gpu_load_peak_pct"):
        assert F.lookup(F.RECORD, wrong) is None and F.lookup(F.READING, wrong) is None


def test_docs_are_generated_from_the_declarations():
    for path, text in fieldsdoc.expected().items():
        assert path.read_text(encoding="utf-8") == text, f"run python -m orchestrator.fieldsdoc ({path.name})"
    measurement = (PKG.parent / "docs" / "measurement.md").read_text(encoding="utf-8")
    for f in list(F.RECORD.values()) + list(F.READING.values()):
        assert f"`{f.name}`" in measurement, f.name


def test_readme_and_docs_name_no_field_that_does_not_exist():
    """A backquoted name with a unit suffix in the README or docs/ is a declared field (or a
    documented non-field: a manifest, config or sampler info key)."""
    import re

    known = {n for t in (F.RECORD, F.READING, F.DERIVED) for n in t}
    non_fields = {"interval_s", "service_interval_s", "achieved_interval_s", "cpu_time_s", "child_cpu_time_s",
                  "load_refresh_s", "idle_timeout_s", "timeout_s", "cooldown_s", "max_temp_c", "t_spawn_ns",
                  "harness_rss_bytes", "harness_cpu_pct_10ms", "harness_cpu_pct_500ms", "overhead_ratio",
                  "tbt_mean_rel_err", "prefill_abs_err_ms", "report_render_s", "report_peak_rss_bytes",
                  "mem_total_bytes", "size_bytes", "t_first_token_s", "t_last_token_s", "t_exit_s",
                  "kernel_peak_rss_bytes", "server_load_s", "t_load_us", "t_p_eval_us", "t_eval_us", "t_sample_us",
                  "kv_self_mib", "cpu_buffer_mib", "cuda_buffer_mib", "compute_buffer_mib", "ttft_p50_s",
                  "tbt_p50_s", "gpu_freq_max_mhz", "power_mw"}
    from orchestrator.bench import TARGETS

    non_fields |= set(TARGETS)  # make bench's figures, named in the README's bench table
    from orchestrator.runprint import COLUMNS

    non_fields |= set(COLUMNS)  # the columns of run --format csv|md|json's summary rows (docs/cli.md)
    from orchestrator.load.format import UNIT_KEYS

    non_fields |= set(UNIT_KEYS)  # the keys of edgebench load's lines and results (docs/load.md)
    pattern = re.compile(r"`([a-z][a-z0-9_]*_(?:s|bytes|pct|mw|c|j|mhz))`")
    bad = []
    for path in [PKG.parent / "README.md", *sorted((PKG.parent / "docs").glob("*.md"))]:
        for name in pattern.findall(path.read_text(encoding="utf-8")):
            if name not in known and name not in non_fields and F.lookup(F.RECORD, name) is None \
                    and F.lookup(F.READING, name) is None:
                bad.append(f"{path.name}: {name}")
    assert bad == []
