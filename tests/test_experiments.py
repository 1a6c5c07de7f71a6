"""Experiments without llama.cpp: plan files, the selection rules, --plan-only, discarded
readings, thermal gating, confidence intervals, and an interrupted `experiment all` resumed
(tests/fakemain.py stands in for `main`, so each test runs in well under a second)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakemain import FakeMain, fake_binary, write_vocab_model

from orchestrator import stats
from orchestrator.cli import main
from orchestrator.config import RunConfig
from orchestrator.errors import UserError
from orchestrator.experiments import plans, rules
from orchestrator.experiments import runner as xrun
from orchestrator.experiments.thermal import Gate
from orchestrator.sampling.base import Sampler
from orchestrator.store import RunReader, record_key
from orchestrator.workloads.schema import Query

# prompt_tokens_est per category: medians 12 (simple), 40 (complex), 20 (conversational),
# task-oriented spans 50..110, contextual's 95 is the one closest to a task-oriented length.
LENGTHS = {
    "simple": [9, 12, 30],
    "complex": [35, 40, 70],
    "conversational": [11, 20, 26],
    "task-oriented": [50, 61, 62, 80, 90, 110],
    "contextual": [240, 95, 300],
}


def rows() -> list[dict]:
    out = []
    for cat, lengths in LENGTHS.items():
        for i, n in enumerate(lengths):
            out.append({"id": f"{cat}-{i}", "category": cat, "max_tokens": 5, "prompt_tokens_est": n,
                        "prompt": " ".join(f"w{j}" for j in range(n))})
    return out


@pytest.fixture
def setup(tmp_path):
    wl = tmp_path / "w.jsonl"
    wl.write_text("".join(json.dumps(r) + "\n" for r in rows()))
    model = write_vocab_model(tmp_path / "vocab.gguf")
    binary = fake_binary(tmp_path / "main")
    cfg = RunConfig(binary=binary, model=model, workload=wl, out_dir=tmp_path / "out")
    return cfg


def cli(cfg: RunConfig, *args):
    return CliRunner().invoke(main, ["experiment", *args, "--binary", str(cfg.binary), "--model", str(cfg.model),
                                     "--workload", str(cfg.workload), "--reports-dir", str(cfg.out_dir)])


def plan_only(cfg, name) -> dict:
    res = cli(cfg, name, "--plan-only")
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


# -- selection ---------------------------------------------------------------------------
def queries(spec: dict[str, list[int]]) -> tuple[list[Query], dict]:
    qs, tokens = [], {}
    for cat, lengths in spec.items():
        for i, n in enumerate(lengths):
            q = Query(f"{cat}-{i}", cat, "p", 5)
            qs.append(q)
            tokens[q.id] = n
    return qs, tokens


def test_median_rule_picks_the_query_closest_to_each_category_median_first_on_ties():
    qs, tokens = queries({"simple": [5, 9, 30, 11], "complex": [10, 20]})
    picks = rules.median(qs, ("simple", "complex"), tokens)
    # simple's median is 10: 9 and 11 are equally close, the workload's first wins
    assert [q.id for q, _ in picks] == ["simple-1", "complex-0"]
    assert "median of 10" in picks[0][1] and "median of 15" in picks[1][1]


def test_spread_rule_picks_increasing_lengths_across_the_range():
    qs, tokens = queries({"task-oriented": [50, 61, 62, 80, 90, 110, 51]})
    picks = rules.spread(qs, "task-oriented", 4, tokens)
    # targets 50, 70, 90, 110
    assert [tokens[q.id] for q, _ in picks] == [50, 62, 90, 110]
    # three lengths cannot be spread four ways
    few, t = queries({"task-oriented": [5, 5, 6, 7]})
    with pytest.raises(UserError, match="3"):
        rules.spread(few, "task-oriented", 4, t)


def test_matched_pair_is_the_closest_lengths_across_the_two_categories():
    qs, tokens = queries({"contextual": [240, 95, 300], "task-oriented": [50, 90, 110]})
    (a, why), (b, _) = rules.matched_pair(qs, ("contextual", "task-oriented"), tokens)
    assert (a.id, b.id) == ("contextual-1", "task-oriented-1") and "difference of 5" in why


# -- plan files --------------------------------------------------------------------------
def test_every_shipped_plan_loads():
    assert set(plans.builtin_names()) == {*plans.STUDY, "ngl-sweep"}
    for name in plans.builtin_names():
        assert plans.load(plans.find(name)).name == name


@pytest.mark.parametrize("text,key", [
    ("name: x\nselect: {rule: median}\nwarmpu: 1\n", "warmpu"),
    ("name: x\nselect: {rule: nearest}\n", "select.rule"),
    ("name: x\nselect: {rule: spread, categories: [task-oriented]}\n", "select.count"),
    ("name: x\nselect: {rule: median, categories: [poetry]}\n", "select.categories"),
    ("name: x\nselect: {rule: median}\nmax_tokens: [10, -1]\n", "max_tokens"),
    ("name: x\nselect: {rule: median}\nn_gpu_layers: {from: 0, step: 0}\n", "n_gpu_layers.step"),
])
def test_a_bad_plan_is_refused_naming_the_file_and_the_key(tmp_path, text, key):
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as e:
        plans.load(path)
    assert str(path) in e.value.message and f": {key}:" in e.value.message


def test_broken_yaml_and_json_name_the_file(tmp_path):
    y, j = tmp_path / "p.yaml", tmp_path / "p.json"
    y.write_text("name: [x\n")
    j.write_text('{"name": ')
    with pytest.raises(UserError, match=f"{y} is not valid YAML"):
        plans.load(y)
    with pytest.raises(UserError, match=f"{j} is not valid JSON"):
        plans.load(j)


# -- --plan-only ---------------------------------------------------------------------------
def test_plan_only_shows_each_rule_applied(setup):
    g = plan_only(setup, "granular")
    assert [(q["id"], q["prompt_tokens"]) for q in g["queries"]] == [
        ("simple-1", 12), ("complex-1", 40), ("conversational-1", 20), ("task-oriented-2", 62),
        ("contextual-0", 240)]
    assert (g["interval_s"], g["warmup"], g["repeat"], g["discard_first_readings"]) == (0.01, 1, 3, 4)
    assert g["n_items"] == 5 * 4 and "closest to the simple median of 12" in g["queries"][0]["why"]

    p = plan_only(setup, "prompt-sweep")
    assert p["spread"]["prompt_tokens"] == [50, 62, 90, 110]  # targets 50, 70, 90, 110: 62 is nearer 70 than 80
    assert {q["max_tokens"][0] for q in p["queries"]} == {50} and p["interval_s"] == 0.01 and p["warmup"] == 1

    o = plan_only(setup, "output-sweep")
    assert [q["id"] for q in o["queries"]] == ["conversational-1"]
    assert o["queries"][0]["max_tokens"] == [10, 50, 120, 230, 400]
    assert o["queries"][0]["ctx_size"] == [512, 512, 512, 512, 512]  # 20 + 400 + slack fits the 512 minimum
    assert o["n_items"] == 5 * 2

    m = plan_only(setup, "matched-pair")
    assert [q["id"] for q in m["queries"]] == ["contextual-1", "task-oriented-4"]
    assert m["matched_pair"] == {"prompt_tokens": [95, 90], "difference_tokens": 5, "compare": "total_s"}

    c = plan_only(setup, "categories")
    assert c["n_items"] == len(rows()) and c["interval_s"] == 0.5


def test_plan_only_all_lists_the_five_parts(setup):
    res = cli(setup, "all", "--plan-only", "--repeat", "2")
    assert res.exit_code == 0, res.output
    parts = json.loads(res.output)["parts"]
    assert [p["experiment"] for p in parts] == list(plans.STUDY) and all(p["repeat"] == 2 for p in parts)


def test_ngl_sweep_on_a_cpu_build_explains_and_exits_1(setup):
    res = cli(setup, "ngl-sweep", "--plan-only")
    assert res.exit_code == 1
    shown = json.loads(res.output[: res.output.rindex("}") + 1])
    assert shown["would_run"] is False and "no -ngl/--n-gpu-layers option" in shown["why_not"]
    assert "LLAMA_CUBLAS=1" in res.output  # the fix
    ran = cli(setup, "ngl-sweep")
    assert ran.exit_code == 1 and "not running ngl-sweep" in ran.output and not setup.out_dir.exists()


def test_ngl_sweep_with_a_gpu_build_steps_from_0_to_every_layer(setup):
    setup.binary.write_text("#!/bin/sh\necho '  -ngl N, --n-gpu-layers N  number of layers to store in VRAM'\n")
    s = plan_only(setup, "ngl-sweep")
    # the vocab model has 1 layer: step 4 from 0 still ends at all of them
    assert s["would_run"] is True and [v["n_gpu_layers"] for v in s["variants"]] == [0, 1]
    assert len(s["queries"]) == 5 and s["n_items"] == 5 * 2 * 2


def test_a_users_own_json_plan_runs(setup, tmp_path, monkeypatch):
    monkeypatch.setattr("orchestrator.engine.child.run_child", FakeMain())
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps({"name": "short-simple", "select": {"rule": "all", "categories": ["simple"]},
                                "max_tokens": 3, "repeat": 2}))
    res = cli(setup, "--plan", str(mine))
    assert res.exit_code == 0, res.output
    (run,) = [p for p in setup.out_dir.iterdir()]
    recs = RunReader(run).queries()
    assert len(recs) == 3 * 2 and {r["output_tokens"] for r in recs} == {3}
    assert {r["experiment"]["name"] for r in recs} == {"short-simple"}
    assert "95% confidence intervals" in res.output


# -- discarded readings, gating, intervals -------------------------------------------------
class SixReadings(Sampler):
    name, kind = "six", "gpu"

    def stop(self):
        return [{"t_s": 0.01 * i, "gpu_mem_bytes": 1000 * i} for i in reversed(range(6))]

    def aggregate(self, samples, timeline):
        return {"gpu_mem_low_bytes": min(s["gpu_mem_bytes"] for s in samples), "gpu_n_readings": len(samples)}


def test_granular_marks_the_first_four_readings_of_each_measured_query_and_stats_skip_them(setup):
    plan = plans.load(plans.find("granular"))
    res = xrun.resolve(plan, setup, repeat=1)
    s = xrun.start(res, samplers=[SixReadings()], executor=FakeMain(), log=lambda m: None)
    s.run()
    reader = RunReader(s.store.dir)
    recs, samples = reader.queries(), reader.samples()
    assert len(recs) == 10 and len(samples) == 60  # nothing deleted
    for r in recs:
        mine = [x for x in samples if x["attempt"] == r["attempt"]]
        marked = sorted(x["gpu_mem_bytes"] for x in mine if x.get("discard"))
        assert marked == ([0, 1000, 2000, 3000] if r["phase"] == "measure" else [])
        # the record's figures come from the kept readings only
        assert (r["gpu_mem_low_bytes"], r["gpu_n_readings"]) == ((4000, 2) if r["phase"] == "measure" else (0, 6))
    from orchestrator.report import load

    kept = load.samples_frame(load.load(s.store.dir))
    assert kept.height == 60 - 5 * 4  # the report's readings leave the discarded ones out
    assert "discard" not in kept.columns


def thermal_root(tmp_path: Path, temps: list[float]) -> Path:
    """Zones as a Nano names them, plus its PMIC-Die zone that always reads 100 C."""
    names = ["CPU-therm", "GPU-therm", "PLL-therm"]
    for i, (name, t) in enumerate([*zip(names[: len(temps)], temps, strict=True), ("PMIC-Die", 100.0)]):
        z = tmp_path / "sys" / "class" / "thermal" / f"thermal_zone{i}"
        z.mkdir(parents=True, exist_ok=True)
        (z / "type").write_text(f"{name}\n")
        (z / "temp").write_text(f"{int(t * 1000)}\n")
    return tmp_path


def test_thermal_gate_waits_for_the_board_to_cool_and_notes_how_long(tmp_path):
    root = thermal_root(tmp_path, [40.0, 62.5])
    clock = [0.0]

    def sleep(s):  # the hot zone cools 5 C per poll
        clock[0] += s
        t = int((tmp_path / "sys/class/thermal/thermal_zone1/temp").read_text()) - 5000
        (tmp_path / "sys/class/thermal/thermal_zone1/temp").write_text(str(t))

    gate = Gate(cooldown_s=0, max_temp_c=50, timeout_s=60, root=root, poll_s=2, sleep=sleep, clock=lambda: clock[0])
    note = gate(None)["gate"]
    assert note["temp_start_c"] == 62.5 and note["temp_end_c"] == 47.5 and note["waited_s"] == 6
    assert note["timed_out"] is False  # the PMIC-Die zone's constant 100 C did not hold it
    stuck = Gate(max_temp_c=10, timeout_s=5, root=root, poll_s=2, sleep=lambda s: clock.__setitem__(0, clock[0] + s),
                 clock=lambda: clock[0], log=lambda m: None)
    assert stuck(None)["gate"]["timed_out"] is True
    with pytest.raises(UserError, match="no readable thermal zone") as e:
        Gate(max_temp_c=50, root=tmp_path / "elsewhere")
    assert "--cooldown" in e.value.fix


def test_cooldown_waits_between_items_not_before_the_first_and_is_recorded(setup):
    pair_once = dataclasses.replace(plans.load(plans.find("matched-pair")), warmup=0, repeat=1)
    res = xrun.resolve(pair_once, setup)
    s = xrun.start(res, gating={"cooldown_s": 0.2, "max_temp_c": None, "timeout_s": 60}, executor=FakeMain(),
                   log=lambda m: None)
    recs = s.run().records
    assert [r["gate"]["cooldown_s"] for r in recs] == [0.0, 0.2]
    assert recs[1]["gate"]["waited_s"] >= 0.2  # the first waited for nothing: its cooldown_s is 0.0
    assert RunReader(s.store.dir).manifest["experiment"]["gating"]["cooldown_s"] == 0.2


def test_confidence_interval_uses_the_t_distribution():
    c = stats.describe([1.0, 2.0, 3.0])
    assert c["mean"] == 2.0 and c["std"] == 1.0  # the sample standard deviation (n - 1)
    assert c["ci_half"] == pytest.approx(4.3027 / 3 ** 0.5, rel=1e-4)
    assert (c["ci_lo"], c["ci_hi"]) == (2.0 - c["ci_half"], 2.0 + c["ci_half"])
    assert stats.t975(40) == pytest.approx(2.0211, abs=2e-4) and stats.t975(200) == pytest.approx(1.9719, abs=2e-4)
    assert stats.describe([5.0])["ci_half"] is None and stats.describe([5.0])["std"] is None


def test_matched_pair_warms_up_repeats_and_the_cli_repeat_overrides_it(setup):
    m = plan_only(setup, "matched-pair")
    # one warm-up (the study discarded it) and 3 measured repetitions of each side, at exactly 50 tokens
    assert (m["warmup"], m["repeat"], m["n_items"], m["ignore_eos"]) == (1, 3, 2 * (1 + 3), True)
    more = cli(setup, "matched-pair", "--plan-only", "--repeat", "5")
    assert more.exit_code == 0, more.output
    assert (json.loads(more.output)["repeat"], json.loads(more.output)["n_items"]) == (5, 2 * (1 + 5))
    # `experiment all` keeps each plan's own repetitions unless --repeat is given
    for args, want in (((), 3), (("--repeat", "2"), 2)):
        res = cli(setup, "all", "--plan-only", *args)
        assert res.exit_code == 0, res.output
        (pair,) = [p for p in json.loads(res.output)["parts"] if p["experiment"] == "matched-pair"]
        assert (pair["warmup"], pair["repeat"]) == (1, want)


def test_matched_pair_results_compare_total_time_with_intervals(setup):
    res = xrun.resolve(plans.load(plans.find("matched-pair")), setup)  # the plan's own warm-up and 3 repetitions
    s = xrun.start(res, executor=FakeMain(eos_after=7), log=lambda m: None)
    recs = s.run().records
    assert sorted(r["phase"] for r in recs) == ["measure"] * 6 + ["warmup"] * 2
    out = xrun.finish_results(s)
    cmp_ = RunReader(s.store.dir).manifest["results"]["compare"]
    assert cmp_ == json.loads(json.dumps(out["compare"]))
    ctx, task = cmp_["sides"]
    # the fake prefills 1 ms per prompt word (+ BOS): 95 vs 90 words
    assert cmp_["difference"] == pytest.approx(0.005, abs=1e-4)
    assert ctx["total_s"]["n"] == 3 and ctx["total_s"]["ci_half"] == pytest.approx(0, abs=1e-6)
    # the fake's timings do not vary, so the difference's interval is the difference itself
    assert cmp_["ci_lo"] == pytest.approx(0.005, abs=1e-4) and cmp_["ci_hi"] == pytest.approx(0.005, abs=1e-4)
    assert ctx["output_tokens"] == [50] and task["output_tokens"] == [50]  # EOS ignored: the fake stops at 7
    # the page's pair figure says the same difference, interval and token counts
    from orchestrator.report import load, render

    (fig,) = [f for f in render.context(load.load(s.store.dir))["figures"] if f.id == "pair-total"]
    assert fig.svg and "contextual minus task-oriented: +0.005 s (95% interval +0.005 to +0.005 s)" in fig.caption
    assert "output tokens: contextual 50, task-oriented 50" in fig.caption


def test_the_output_sweep_and_the_pair_generate_exactly_the_tokens_asked(setup):
    for name, limits in (("output-sweep", [10, 50, 120, 230, 400]), ("matched-pair", [50])):
        fake = FakeMain(eos_after=7)  # a model that would end its answer after 7 tokens
        s = xrun.start(xrun.resolve(plans.load(plans.find(name)), setup), executor=fake, log=lambda m: None)
        recs = s.run().records
        assert fake.calls and all("--ignore-eos" in argv for argv in fake.calls), name
        assert all(r["ignore_eos"] is True and r["output_tokens"] == r["max_tokens"] for r in recs), name
        assert sorted({r["output_tokens"] for r in recs}) == limits  # 230 and 400 are really 230 and 400
        manifest = RunReader(s.store.dir).manifest
        assert manifest["experiment"]["plan"]["ignore_eos"] is True and manifest["ignore_eos"] is True
    # the same model stops at EOS in a plan that does not ask otherwise (this vocab model is no twin)
    fake = FakeMain(eos_after=7)
    s = xrun.start(xrun.resolve(plans.load(plans.find("prompt-sweep")), setup), executor=fake, log=lambda m: None)
    recs = s.run().records
    assert all("--ignore-eos" not in argv for argv in fake.calls) and {r["output_tokens"] for r in recs} == {7}
    assert {r["ignore_eos"] for r in recs} == {False}
    # an explicit --stop-at-eos wins over the plan's key, and the record says which was in force
    fake = FakeMain(eos_after=7)
    res = xrun.resolve(plans.load(plans.find("output-sweep")), dataclasses.replace(setup, ignore_eos=False))
    recs = xrun.start(res, executor=fake, log=lambda m: None).run().records
    assert {r["output_tokens"] for r in recs} == {7} and {r["ignore_eos"] for r in recs} == {False}


def test_a_plans_ignore_eos_must_be_true_or_false(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: x\nselect: {rule: median}\nignore_eos: sometimes\n")
    with pytest.raises(UserError, match="ignore_eos: must be true or false") as e:
        plans.load(path)
    assert str(path) in e.value.message


# -- experiment all ------------------------------------------------------------------------
def test_interrupted_experiment_all_resumes_each_item_exactly_once(setup):
    calls = [0]

    def stop_in_granular(argv):
        calls[0] += 1
        if calls[0] == len(rows()) + 6:  # the categories part (one item per query), then 5 of granular
            raise KeyboardInterrupt

    exp_dir, _ = xrun.create_all(setup)
    with pytest.raises(KeyboardInterrupt):
        xrun.run_all(exp_dir, run_session=lambda s, p: s.run(), executor=FakeMain(stop_in_granular),
                     log=lambda m: None)
    index = json.loads((exp_dir / "experiment.json").read_text())
    assert index["status"] == "interrupted"
    assert [(p["name"], p["status"]) for p in index["parts"]] == [
        ("categories", "finished"), ("granular", "interrupted"), ("prompt-sweep", "pending"),
        ("output-sweep", "pending"), ("matched-pair", "pending")]

    again, logged = FakeMain(), []
    xrun.run_all(exp_dir, run_session=lambda s, p: s.run(), executor=again, log=logged.append)
    index = json.loads((exp_dir / "experiment.json").read_text())
    assert index["status"] == "finished" and {p["status"] for p in index["parts"]} == {"finished"}
    assert "categories: finished earlier, not run again" in logged
    total = 0
    for part in index["parts"]:
        reader = RunReader(exp_dir / part["run_dir"])
        keys = [record_key(r) for r in reader.queries()]
        planned = [(i["query_id"], ",".join(f"{k}={v}" for k, v in sorted(i["variant"].items())), i["phase"],
                    i["repetition"]) for i in reader.manifest["plan"]["items"]]
        assert sorted(keys) == sorted(planned) and len(set(keys)) == len(keys)
        assert reader.manifest["experiment"]["name"] == "all" and reader.manifest["experiment"]["part"] == part["name"]
        assert reader.manifest["experiment"]["plan"]["name"] == part["name"]
        total += len(keys)
    # the second run ran exactly what the first had not
    assert len(again.calls) == total - (calls[0] - 1)


def test_cli_experiment_all_interrupted_then_the_same_command_finishes_it(setup, monkeypatch):
    calls = [0]

    def interrupt_once(argv):
        calls[0] += 1
        if calls[0] == len(rows()) + 3:
            raise KeyboardInterrupt

    monkeypatch.setattr("orchestrator.engine.child.run_child", FakeMain(interrupt_once))
    first = cli(setup, "all")
    assert first.exit_code == 130 and f"experiment --resume {setup.out_dir}" in first.output
    (exp,) = [p for p in setup.out_dir.iterdir()]
    assert json.loads((exp / "experiment.json").read_text())["status"] == "interrupted"
    again = cli(setup, "all")
    assert again.exit_code == 0, again.output
    assert f"finishing the unfinished experiment {exp}" in again.output
    assert [p for p in setup.out_dir.iterdir()] == [exp]  # no second experiment folder
    index = json.loads((exp / "experiment.json").read_text())
    assert index["status"] == "finished" and all(p["status"] == "finished" for p in index["parts"])
    # a finished experiment is not picked up again: the next `all` starts a new folder
    assert cli(setup, "all").exit_code == 0 and len(list(setup.out_dir.iterdir())) == 2


def test_cli_resume_of_a_single_plan_run(setup, monkeypatch):
    def interrupt_third(argv, n=[0]):  # noqa: B006 - a call counter
        n[0] += 1
        if n[0] == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr("orchestrator.engine.child.run_child", FakeMain(interrupt_third))
    first = cli(setup, "output-sweep")
    assert first.exit_code == 130
    (run,) = [p for p in setup.out_dir.iterdir()]
    res = CliRunner().invoke(main, ["experiment", "--resume", str(run)])
    assert res.exit_code == 0, res.output
    recs = RunReader(run).queries()
    assert len(recs) == len({record_key(r) for r in recs}) == 10
    assert sorted(r["output_tokens"] for r in recs if r["phase"] == "measure") == [10, 50, 120, 230, 400]


def test_name_and_plan_file_are_one_or_the_other(setup, tmp_path):
    both = cli(setup, "granular", "--plan", str(plans.find("granular")))
    assert both.exit_code == 2 and "or --plan FILE" in both.output
    unknown = cli(setup, "granualr", "--plan-only")
    assert unknown.exit_code == 1 and "no experiment plan named 'granualr'" in unknown.output
    assert "granular" in unknown.output  # the fix lists the plans
