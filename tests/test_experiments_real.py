"""`edgebench experiment` with the real llama.cpp `main` on the tiny twin: `experiment all`
killed with SIGKILL in its second part, rerun, and every part checked for what its plan asks
(each item exactly once, discarded readings, output limits, spread, the matched pair)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from waiting import HANG_S, wait_for

from orchestrator.packaged import default_workload
from orchestrator.store import RunReader, record_key

REPO = Path(__file__).resolve().parents[1]
# 3 queries per category, 4 task-oriented ones of different lengths for the prompt sweep.
PICK = {"simple": 3, "complex": 3, "conversational": 3, "task-oriented": 4, "contextual": 3}


def small_workload(path: Path) -> Path:
    rows, seen = [], {}
    for line in (default_workload()).read_text().splitlines():
        r = json.loads(line)
        lengths = seen.setdefault(r["category"], set())
        if len(lengths) < PICK[r["category"]] and r["prompt_tokens_est"] not in lengths:
            lengths.add(r["prompt_tokens_est"])
            rows.append(r)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def eb_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "orchestrator", "experiment", *args]


@pytest.fixture(scope="module")
def study(tmp_path_factory, llama_bin_dir, tiny_model):
    root = tmp_path_factory.mktemp("root")
    out = root / "reports"
    wl = small_workload(root / "small.jsonl")
    env = dict(os.environ, EDGEBENCH_ROOT=str(root), EDGEBENCH_LOCK=str(root / "measure.lock"))
    cmd = eb_cmd("all", "--binary", str(llama_bin_dir / "main"), "--model", str(tiny_model), "--workload", str(wl),
                 "--reports-dir", str(out), "--threads", "1")  # one thread: no spin-waiting on a shared CI machine
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    def granular_started() -> bool:
        done = list(out.glob("*/granular/queries.jsonl")) if out.exists() else []
        return bool(done) and len(done[0].read_text().splitlines()) >= 2

    wait_for(lambda: granular_started() or proc.poll() is not None, timeout=HANG_S, step=0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (exp,) = [p for p in out.iterdir() if p.is_dir()]
    before = {p.name: RunReader(p).queries() for p in exp.iterdir() if (p / "manifest.json").is_file()}
    index_before = json.loads((exp / "experiment.json").read_text())
    # the same command again finds the unfinished experiment and completes it
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=HANG_S)
    return {"exp": exp, "before": before, "index_before": index_before, "res": res, "llama": llama_bin_dir,
            "model": tiny_model, "workload": wl, "env": env}


def part(study, name):
    reader = RunReader(study["exp"] / name)
    return reader, [r for r in reader.queries()]


def test_killed_experiment_all_finishes_every_item_exactly_once(study):
    res = study["res"]
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert f"finishing the unfinished experiment {study['exp']}" in res.stdout
    assert "categories: finished earlier, not run again" in res.stdout
    assert study["index_before"]["status"] == "running"  # SIGKILL left no chance to write more
    assert [p["status"] for p in study["index_before"]["parts"]][:2] == ["finished", "running"]
    index = json.loads((study["exp"] / "experiment.json").read_text())
    assert index["status"] == "finished" and [p["name"] for p in index["parts"]] == [
        "categories", "granular", "prompt-sweep", "output-sweep", "matched-pair"]
    for p in index["parts"]:
        reader, recs = part(study, p["run_dir"])
        keys = [record_key(r) for r in recs]
        assert len(keys) == len(set(keys)) == len(reader.manifest["plan"]["items"]), p["name"]
        assert all(r["status"] == "ok" for r in recs), p["name"]
        assert reader.manifest["experiment"]["part"] == p["name"]
        earlier = study["before"].get(p["name"], [])
        assert [r["attempt"] for r in recs[: len(earlier)]] == [r["attempt"] for r in earlier]
    assert 2 <= len(study["before"]["granular"]) < 20


def test_categories_runs_every_query_at_its_own_limit(study):
    reader, recs = part(study, "categories")
    assert len(recs) == sum(PICK.values()) and reader.manifest["config"]["interval_s"] == 0.5
    assert all(r["output_tokens"] == r["max_tokens"] for r in recs)  # the twin ignores EOS


def test_granular_warms_up_repeats_and_marks_the_first_four_readings(study):
    reader, recs = part(study, "granular")
    assert len({r["query_id"] for r in recs}) == 5
    assert sorted((r["phase"], r["repetition"]) for r in recs if r["category"] == "simple") == [
        ("measure", 0), ("measure", 1), ("measure", 2), ("warmup", 0)]
    samples = reader.samples()
    kept_some = False
    for r in recs:
        mine = sorted((s for s in samples if s["attempt"] == r["attempt"]), key=lambda s: s["t_s"])
        marked = [s.get("discard", False) for s in mine]
        want = min(4, len(mine)) if r["phase"] == "measure" else 0
        assert marked == [True] * want + [False] * (len(mine) - want)
        kept_some |= r["phase"] == "measure" and len(mine) > 4
    assert kept_some  # 10 ms sampling leaves readings after the discarded ones


def test_prompt_sweep_spreads_prompts_at_50_output_tokens(study):
    reader, recs = part(study, "prompt-sweep")
    measured = [r for r in recs if r["phase"] == "measure"]
    assert [r["output_tokens"] for r in measured] == [50] * 4 and reader.manifest["config"]["interval_s"] == 0.01
    lengths = [r["prompt_tokens"] for r in measured]
    assert lengths == sorted(lengths) and len(set(lengths)) == 4


def test_output_sweep_runs_the_five_limits(study):
    reader, recs = part(study, "output-sweep")
    measured = [r for r in recs if r["phase"] == "measure"]
    assert [r["output_tokens"] for r in measured] == [10, 50, 120, 230, 400]
    assert len({r["query_id"] for r in recs}) == 1 and {r["category"] for r in recs} == {"conversational"}
    # the plan asks main to ignore EOS, whatever the model: the limits are the tokens generated
    assert reader.manifest["experiment"]["plan"]["ignore_eos"] is True and all(r["ignore_eos"] for r in recs)


def test_matched_pair_compares_total_time(study):
    reader, recs = part(study, "matched-pair")
    cmp_ = reader.manifest["results"]["compare"]
    a, b = (s["total_s"]["mean"] for s in cmp_["sides"])
    assert [s["category"] for s in cmp_["sides"]] == ["contextual", "task-oriented"]
    assert cmp_["difference"] == pytest.approx(a - b) and a > 0 and b > 0
    assert "matched pair, total_s" in study["res"].stdout
    # a warm-up each, left out; 3 measured repetitions each, so the difference has its interval
    assert sorted(r["phase"] for r in recs) == ["measure"] * 6 + ["warmup"] * 2
    assert [s["total_s"]["n"] for s in cmp_["sides"]] == [3, 3]
    assert cmp_["ci_lo"] <= cmp_["difference"] <= cmp_["ci_hi"]
    assert [s["output_tokens"] for s in cmp_["sides"]] == [[50], [50]] and all(r["ignore_eos"] for r in recs)


def test_the_sweep_timelines_are_drawn_from_the_categories_part(study):
    from orchestrator.report import load, render

    figs = {f.id: f for f in render.context(load.load(study["exp"]))["figures"]}
    for fig_id in ("memory-timeline", "util-timeline"):
        assert figs[fig_id].svg, (fig_id, figs[fig_id].absent)
    assert "cold TTFT" in figs["ttft-box"].caption


def test_ngl_sweep_plan_only_on_the_cpu_build_says_why_not(study):
    res = subprocess.run(eb_cmd("ngl-sweep", "--plan-only", "--binary", str(study["llama"] / "main"), "--model",
                                str(study["model"]), "--workload", str(study["workload"])),
                         env=study["env"], capture_output=True, text=True, timeout=HANG_S)
    assert res.returncode == 1
    assert "\"would_run\": false" in res.stdout and "every step would measure the same CPU run" in res.stdout
    assert "fix:" in res.stderr and "LLAMA_CUBLAS=1" in res.stderr


def test_queries_without_estimates_are_counted_with_the_real_tokenizer(tmp_path, llama_bin_dir, tiny_model):
    rows = [json.loads(line) for line in (default_workload()).read_text().splitlines()]
    conv = [r for r in rows if r["category"] == "conversational"]
    stripped = tmp_path / "conv.jsonl"
    stripped.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "prompt_tokens_est"}) + "\n"
                                for r in conv))
    res = subprocess.run(eb_cmd("output-sweep", "--plan-only", "--binary", str(llama_bin_dir / "main"), "--model",
                                str(tiny_model), "--workload", str(stripped)),
                         env=dict(os.environ, EDGEBENCH_ROOT=str(tmp_path)), capture_output=True, text=True,
                         timeout=HANG_S)
    assert res.returncode == 0, res.stderr
    (q,) = json.loads(res.stdout)["queries"]
    assert q["prompt_tokens_from"] == "tokenizer"
    # the same count `edgebench workloads build` stored in the shipped workload
    assert q["prompt_tokens"] == next(r["prompt_tokens_est"] for r in conv if r["id"] == q["id"])
