"""`edgebench run` with the real llama.cpp `main` on a small twin: records, validation, raw
files, prompts a shell would mangle, failures, and resume after SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from waiting import HANG_S, wait_for

from orchestrator.packaged import default_workload

REPO = Path(__file__).resolve().parents[1]
DEFAULT = default_workload()


def eb(root, *args, timeout=HANG_S):
    env = dict(os.environ, EDGEBENCH_ROOT=str(root))
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def run_args(llama_bin_dir, tiny_model, out, *extra, binary=None):
    return ["run", "--binary", str(binary or llama_bin_dir / "main"), "--model", str(tiny_model),
            "--reports-dir", str(out), *extra]


def only_run(out: Path) -> Path:
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_workload(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def default_run(tmp_path_factory, llama_bin_dir, tiny_model):
    root = tmp_path_factory.mktemp("root")
    out = root / "reports"
    res = eb(root, *run_args(llama_bin_dir, tiny_model, out, "--workload", str(DEFAULT), "--limit", "2",
                             "--interval", "0.01"))
    assert res.returncode == 0, res.stderr + res.stdout
    return res, only_run(out)


def test_every_query_recorded_ok_with_the_defined_figures(default_run):
    res, run = default_run
    recs = read_jsonl(run / "queries.jsonl")
    assert len(recs) == 10 and len({r["query_id"] for r in recs}) == 10
    for r in recs:
        assert r["status"] == "ok", r
        checks = r["validation"]["checks"]
        # what no load can change: the tokens counted three ways agree, the stream ends with main's output
        assert checks["token_count"]["ok"] and checks["stream_matches_output"]["ok"], r["validation"]
        # the timing checks are made for every query; how close they come is `make bench`'s figure
        # (tbt_mean_rel_err, prefill_abs_err_ms): a loaded machine delays main between its evals, and says so
        assert all(checks[k]["diff"] is not None for k in ("prefill", "tbt_mean")), r["validation"]
        assert r["output_tokens"] == r["max_tokens"]  # synthetic twin: --ignore-eos
        assert len(r["tbt_s"]) == r["output_tokens"] - 1
        # a busy core can read the echo and the twin's first token (a few ms later) in one go: TTFT 0
        assert 0 < r["load_s"] <= r["cold_ttft_s"] <= r["total_s"]
        assert r["cold_ttft_s"] == pytest.approx(r["load_s"] + r["ttft_s"])
        assert r["prompt_tokens"] == r["prompt_tokens_est"]
        assert r["ctx_size"] >= r["prompt_tokens"] + r["max_tokens"]
        assert r["llama"]["kv_self_mib"] > 0 and r["llama"]["n_eval"] == r["output_tokens"] - 1
        assert r["peak_rss_bytes"] > 1_000_000
    assert f"report: {run / 'summary.html'}" in res.stdout
    assert "task-oriented" in res.stdout and "TTFT p50" in res.stdout


def test_samples_are_tagged_and_hold_at_10ms(default_run):
    _, run = default_run
    recs = {r["attempt"]: r for r in read_jsonl(run / "queries.jsonl")}
    samples = read_jsonl(run / "samples.jsonl")
    assert {s["attempt"] for s in samples} == set(recs)
    for attempt, rec in recs.items():
        mine = [s for s in samples if s["attempt"] == attempt and s["sampler"] == "process"]
        assert all(s["query_id"] == rec["query_id"] for s in mine)
        # as many readings as the record counts (how many a loaded machine allows is no test)
        assert mine and rec["n_samples"] == sum(1 for s in samples if s["attempt"] == attempt)
        # the kernel's high-water mark bounds every sample
        assert 0 < max(s["rss_bytes"] for s in mine) <= rec["peak_rss_bytes"]


def test_manifest_and_raw_files(default_run):
    _, run = default_run
    m = json.loads((run / "manifest.json").read_text())
    assert m["schema_version"] == 2 and m["status"] == "finished"
    assert m["binary"]["commit"] == "a33e6a0" and m["binary"]["patch_state"] == "applied"
    assert len(m["binary"]["sha256"]) == 64 and len(m["model"]["sha256"]) == 64
    assert m["model"]["synthetic"] is True and m["model"]["block_count"] == 2
    assert len(m["workload"]["sha256"]) == 64 and m["config"]["interval_s"] == 0.01
    assert m["harness"]["peak_rss_bytes"] > 0
    rec = read_jsonl(run / "queries.jsonl")[0]
    raw = run / "raw" / rec["raw_dir"]
    assert "prompt_tokens" in (raw / "llama.yml").read_text()
    assert "KV self size" in (raw / "stderr.log").read_text()
    assert (raw / "main.log").exists()


def test_summary_html_escapes_model_output(default_run):
    _, run = default_run
    html = (run / "summary.html").read_text()
    assert "synthetic timing twin" in html
    for r in read_jsonl(run / "queries.jsonl"):
        if "<" in r["output_text"]:
            assert r["output_text"] not in html  # raw markup never reaches the page
    assert "<script" not in html


def test_prompts_a_shell_would_mangle_reach_main_intact(tmp_path, llama_bin_dir, tiny_model):
    marker = tmp_path / "pwned"
    long_ctx = " ".join(["The quick brown fox jumps over the lazy dog."] * 70)  # > 512 tokens
    too_long = " ".join(["The quick brown fox jumps over the lazy dog."] * 230)  # > 2048 tokens
    prompts = {
        "quotes": 'He said "hi" and \'bye\'',
        "backslash": "C:\\path\\to\\file and \\n literal",
        "newline": "first line\nsecond line",
        "subshell": f"$(touch {marker}) `touch {marker}` ; touch {marker}",
        "unicode": "café naïve 東京 — ✓",
        "long": long_ctx,
        "too-long": too_long,
    }
    wl = write_workload(tmp_path / "w.jsonl", [
        {"id": k, "category": "simple", "prompt": p, "max_tokens": 8} for k, p in prompts.items()])
    res = eb(tmp_path, *run_args(llama_bin_dir, tiny_model, tmp_path / "out", "--workload", str(wl)))
    assert res.returncode == 3, res.stderr + res.stdout  # too-long failed, the rest ran
    assert not marker.exists()
    run = only_run(tmp_path / "out")
    recs = {r["query_id"]: r for r in read_jsonl(run / "queries.jsonl")}
    for k in ("quotes", "backslash", "newline", "subshell", "unicode", "long"):
        assert recs[k]["status"] == "ok", recs[k]
        stream = (run / "raw" / recs[k]["raw_dir"] / "stream.bin").read_bytes()
        assert stream.startswith((" " + prompts[k]).encode()), k  # the echo is the prompt, byte for byte
    assert recs["long"]["ctx_size"] > 512
    assert recs["too-long"]["status"] == "too_long"
    assert "more than the model's 2048" in recs["too-long"]["error"]


def fake_binary(tmp_path: Path, name: str, body: str) -> Path:
    p = tmp_path / name
    p.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    p.chmod(0o755)
    return p


def test_crash_exit_code_idle_and_timeout_are_recorded_and_the_run_goes_on(tmp_path, tiny_model):
    pidfile = tmp_path / "grandchild.pid"
    script = fake_binary(tmp_path, "main", f"""\
        while [ "$1" != "-p" ]; do shift; done
        case "$2" in
          *crash*) printf ' crash'; kill -SEGV $$ ;;
          *exit3*) echo "model exploded" >&2; exit 3 ;;
          *idle*) printf ' idle'; sleep 30 ;;
          *slow*) sleep 60 & echo $! > {pidfile}; while true; do printf x; sleep 0.05; done ;;
        esac
    """)
    wl = write_workload(tmp_path / "w.jsonl", [
        {"id": k, "category": "simple", "prompt": k, "max_tokens": 4, "prompt_tokens_est": 3}
        for k in ("crash", "exit3", "idle", "slow")])
    # idle 2 s: 40 times the slow query's gap between prints, and time for the others to start and end
    # however loaded the machine; the timeout well past it, so `slow` can only end by the timeout
    res = eb(tmp_path, *run_args(None, tiny_model, tmp_path / "out", "--workload", str(wl), "--idle-timeout", "2",
                                 "--timeout", "6", binary=script))
    assert res.returncode == 3, res.stderr + res.stdout
    recs = {r["query_id"]: r for r in read_jsonl(only_run(tmp_path / "out") / "queries.jsonl")}
    assert recs["crash"]["status"] == "crashed" and recs["crash"]["signal"] == signal.SIGSEGV
    assert recs["exit3"]["status"] == "error" and recs["exit3"]["exit_code"] == 3
    assert "model exploded" in recs["exit3"]["stderr_tail"]
    assert recs["idle"]["status"] == "idle_timeout" and "--idle-timeout" in recs["idle"]["error"]
    assert recs["slow"]["status"] == "timeout" and "--timeout" in recs["slow"]["error"]
    assert not grandchild_alive(int(pidfile.read_text()))  # the whole process group was killed


def grandchild_alive(pid: int, wait_s: float = 120.0) -> bool:
    """Alive and not a zombie (an orphan is reaped by whatever PID 1 this machine has, if any) after
    `wait_s` for it to die: a hang guard, since a killed process still needs the CPU to exit."""
    import psutil

    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize("case", ["not-gguf", "no-binary", "bad-line"])
def test_preflight_errors_name_the_fix_before_any_query(case, tmp_path, llama_bin_dir, tiny_model):
    binary, model, wl = llama_bin_dir / "main", tiny_model, DEFAULT
    if case == "not-gguf":
        model = tmp_path / "model.gguf"
        model.write_text("<html>404</html>")
        want = ["is not a GGUF model", "fix: --model PATH"]
    elif case == "no-binary":
        binary = tmp_path / "nowhere" / "main"
        want = ["does not exist", "fix: make bootstrap, or --binary PATH"]
    else:
        wl = tmp_path / "w.jsonl"
        wl.write_text('{"id": "a", "category": "simple", "prompt": "hi", "max_tokens": 5}\n{"id": "b", oops\n')
        want = [f"{wl}:2:"]
    res = eb(tmp_path, "run", "--binary", str(binary), "--model", str(model), "--workload", str(wl),
             "--reports-dir", str(tmp_path / "out"))
    assert res.returncode == 1
    for w in want:
        assert w in res.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_sigkill_mid_run_then_resume_runs_each_query_exactly_once(tmp_path, llama_bin_dir, tiny_model):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "orchestrator",
           # one thread: two of main's threads spinning on a core that another process holds took 9 minutes
           *run_args(llama_bin_dir, tiny_model, out, "--workload", str(DEFAULT), "--limit", "6", "--threads", "1")]
    proc = subprocess.Popen(cmd, env=dict(os.environ, EDGEBENCH_ROOT=str(tmp_path)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    def recorded_four() -> bool:
        runs = list(out.glob("*/queries.jsonl")) if out.exists() else []
        return bool(runs) and len(runs[0].read_text().splitlines()) >= 4

    wait_for(lambda: recorded_four() or proc.poll() is not None, timeout=HANG_S, step=0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run = only_run(out)
    before = read_jsonl(run / "queries.jsonl")
    assert 4 <= len(before) < 30  # 30 queries: far more than can finish between two polls
    with open(run / "queries.jsonl", "a") as f:
        f.write('{"id": "torn", "stat')  # a write cut short by the kill
    res = eb(tmp_path, "run", "--resume", str(run))
    assert res.returncode == 0, res.stderr + res.stdout
    after = read_jsonl(run / "queries.jsonl")
    ids = [r["query_id"] for r in after]
    assert len(ids) == len(set(ids)) == 30
    assert ids[: len(before)] == [r["query_id"] for r in before]
    assert all(r["status"] == "ok" for r in after)


def test_sigterm_kills_the_query_in_flight_and_keeps_what_was_recorded(tmp_path, tiny_model):
    pidfile = tmp_path / "main.pid"
    script = fake_binary(tmp_path, "main", f"""\
        while [ "$1" != "-p" ]; do shift; done
        case "$2" in
          fast) printf ' fast'; exit 0 ;;
          *) echo $$ > {pidfile}; while true; do printf x; sleep 0.05; done ;;
        esac
    """)
    wl = write_workload(tmp_path / "w.jsonl", [
        {"id": k, "category": "simple", "prompt": k, "max_tokens": 4, "prompt_tokens_est": 3}
        for k in ("fast", "hang")])
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator",
                             *run_args(None, tiny_model, out, "--workload", str(wl), binary=script)],
                            env=dict(os.environ, EDGEBENCH_ROOT=str(tmp_path)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    assert wait_for(lambda: pidfile.exists() and pidfile.read_text().strip() or proc.poll() is not None,
                    timeout=HANG_S), "the hanging query never started"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=HANG_S) == 128 + signal.SIGTERM
    assert not grandchild_alive(int(pidfile.read_text()))
    recs = read_jsonl(only_run(out) / "queries.jsonl")
    assert [r["query_id"] for r in recs] == ["fast"]


def test_relative_paths_are_recorded_absolute_so_resume_works_from_anywhere(tmp_path, llama_bin_dir, tiny_model):
    import shutil

    shutil.copy(tiny_model, tmp_path / "m.gguf")
    shutil.copy(DEFAULT, tmp_path / "w.jsonl")
    env = dict(os.environ, EDGEBENCH_ROOT=str(tmp_path))
    res = subprocess.run([sys.executable, "-m", "orchestrator", "run", "--binary", str(llama_bin_dir / "main"),
                          "--model", "m.gguf", "--workload", "w.jsonl", "--reports-dir", "out", "--limit", "1",
                          "--category", "simple"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=HANG_S)
    assert res.returncode == 0, res.stderr
    run = only_run(tmp_path / "out")
    config = json.loads((run / "manifest.json").read_text())["config"]
    assert config["model"] == str(tmp_path / "m.gguf") and config["workload"] == str(tmp_path / "w.jsonl")
    again = subprocess.run([sys.executable, "-m", "orchestrator", "run", "--resume", str(run)], cwd="/",
                           env=env, capture_output=True, text=True, timeout=HANG_S)
    assert again.returncode == 0, again.stderr
    assert "1 of 1 measurements already recorded" in again.stdout


def test_the_measuring_process_never_imports_the_report_stack(tmp_path, llama_bin_dir, tiny_model):
    code = textwrap.dedent(f"""
        import sys
        from click.testing import CliRunner
        from orchestrator.cli import main
        r = CliRunner().invoke(main, {run_args(llama_bin_dir, tiny_model, tmp_path / 'out',
                                               '--workload', str(DEFAULT), '--limit', '1', '--category', 'simple')!r})
        assert r.exit_code == 0, r.output
        print(sorted(m for m in ("numpy", "polars", "plotnine", "pandas", "gguf", "matplotlib", "orchestrator.report")
                     if m in sys.modules))
    """)
    res = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, EDGEBENCH_ROOT=str(tmp_path)),
                         capture_output=True, text=True, timeout=HANG_S)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "[]"


def test_a_model_larger_than_available_memory_is_refused_before_any_query(tmp_path, llama_bin_dir, tiny_model):
    fake = tmp_path / "sysroot" / "proc"
    fake.mkdir(parents=True)
    (fake / "meminfo").write_text("MemTotal:  4059712 kB\nMemAvailable:  10240 kB\n")  # 10 MiB free
    env = dict(os.environ, EDGEBENCH_ROOT=str(tmp_path), EDGEBENCH_SYSROOT=str(tmp_path / "sysroot"))
    args = [sys.executable, "-m", "orchestrator", *run_args(llama_bin_dir, tiny_model, tmp_path / "out",
                                                             "--workload", str(DEFAULT), "--limit", "1")]
    res = subprocess.run(args, env=env, capture_output=True, text=True, timeout=HANG_S)
    assert res.returncode == 1
    assert "does not fit in the 10 MB of memory available here" in res.stderr
    assert "fix: --model a smaller quantisation" in res.stderr
    assert not (tmp_path / "out").exists()
    forced = subprocess.run([*args, "--no-memory-check", "--category", "simple"], env=env, capture_output=True,
                            text=True, timeout=HANG_S)
    assert forced.returncode == 0, forced.stderr


def test_warmup_and_repeats_survive_sigkill_and_resume_exactly_once(tmp_path, llama_bin_dir, tiny_model):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "orchestrator",
           *run_args(llama_bin_dir, tiny_model, out, "--workload", str(DEFAULT), "--warmup", "1", "--repeat", "2",
                     "--limit", "1", "--category", "simple")]
    proc = subprocess.Popen(cmd, env=dict(os.environ, EDGEBENCH_ROOT=str(tmp_path)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    # the first measured repetition's scratch folder appears once the warm-up's record is on disk
    wait_for(lambda: list(out.glob("*/.scratch/*/measure-0*")) or proc.poll() is not None, timeout=HANG_S, step=0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run = only_run(out)
    before = read_jsonl(run / "queries.jsonl")
    assert 1 <= len(before) < 3 and before[0]["phase"] == "warmup"
    res = eb(tmp_path, "run", "--resume", str(run))
    assert res.returncode == 0, res.stderr + res.stdout
    recs = read_jsonl(run / "queries.jsonl")
    assert [(r["phase"], r["repetition"]) for r in recs] == [("warmup", 0), ("measure", 0), ("measure", 1)]
    assert len({r["query_id"] for r in recs}) == 1 and all(r["status"] == "ok" for r in recs)
    row = next(line for line in res.stdout.splitlines() if line.startswith("simple"))
    assert row.split()[1] == "2"  # n: the two measured repetitions, not the warm-up
