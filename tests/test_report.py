"""`edgebench report` on folders the real writers wrote: the real session on a replayed Nano
(orchestrator/report/replay.py: jtop's and tegrastats' own reading code fed a Nano's counters), real
`edgebench run`s of the tiny twin with each GPU sampler fed at its OS boundary (a fake sysfs tree that
changes while the child runs, a fake jtop with jetson-stats 4.3.2's shapes, recorded tegrastats lines,
a fake NVML), and a real-twin `edgebench experiment all`.

By figure id, each study figure the data allows is drawn; a GPU figure says GET_GPU only when no GPU
sampler ran; no column a sampler recorded reads "not recorded". Then the numbers against a direct
computation, escaping, a self-contained page, the CSV/Parquet export, experiments, index and compare."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import markupsafe
import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from telemetry_board import board
from waiting import HANG_S

from orchestrator import fields as F
from orchestrator.cli import main
from orchestrator.experiments import index
from orchestrator.packaged import default_workload
from orchestrator.report import analysis, export, figures, replay
from orchestrator.report.render import render

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data" / "runs"
FAKES = TESTS / "fakes"
REPO = TESTS.parent

# The study's figures one run can draw; the three experiment figures need their experiment's parts.
SINGLE_RUN = ["prompt-length", "memory-rss", "memory-rss-zoom", "memory-gpu", "cpu-util", "gpu-util", "ttft-box",
              "tbt-box", "total-vs-prompt", "tbt-position", "granular", "memory-time", "memory-timeline",
              "util-timeline"]
EXPERIMENT_ONLY = {"output-sweep": index.OUTPUT_SWEEP, "prompt-sweep": index.PROMPT_SWEEP,
                   "pair-total": index.MATCHED_PAIR}
ALL_IDS = SINGLE_RUN + list(EXPERIMENT_ONLY)
GPU_SAMPLERS = ("jtop", "sysfs", "tegrastats", "nvml")


def esc(text: str) -> str:
    return str(markupsafe.escape(text))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def records(run: Path) -> list[dict]:
    return read_jsonl(run / "queries.jsonl")


def figure_block(page: str, fig_id: str) -> str:
    m = re.search(rf'<figure id="fig-{fig_id}".*?</figure>', page, re.S)
    assert m, f"figure {fig_id} missing from the page"
    return m.group(0)


def drawn(page: str, fig_id: str) -> bool:
    return '<img src="data:image/svg+xml;base64,' in figure_block(page, fig_id)


def table_rows(page: str, start_marker: str) -> list[list[str]]:
    """Cell texts of the rows of the first table after `start_marker`."""
    at = page.index(start_marker)
    table = page[at:page.index("</table>", at)]
    rows = []
    for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S):
        cells = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
        if cells:
            rows.append(cells)
    return rows


def absent_line(page: str) -> str:
    m = re.search(r'<p class="absent" id="absent-metrics">(.*?)</p>', page, re.S)
    return html.unescape(m.group(1)) if m else ""


def fmt(x: float, digits: int = 2) -> str:
    return f"{x:,.{digits}f}"


def measured_ok(recs: list[dict]) -> list[dict]:
    return [r for r in recs if r["status"] == "ok" and r.get("phase", "measure") == "measure"]


def assert_recorded_columns_are_not_called_absent(page: str, recs: list[dict]) -> None:
    """No metric a writer recorded for a successful measured query reads "not recorded"."""
    ok = measured_ok(recs)
    line = absent_line(page)
    for col, label, _unit, _scale in analysis.METRICS:
        if any(r.get(col) not in (None, []) for r in ok):
            # a whole item of the list, not the start of a longer label ("energy per query net of ...")
            assert not re.search(rf"(?:: |, ){re.escape(label)}(?:, |\.)", line), (col, line)


# -- folders ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nano_run(tmp_path_factory):
    """The real session on a replayed Nano with jtop: 3 queries a category, a 10 ms series each."""
    run = replay.make_run(tmp_path_factory.mktemp("nano") / "nano-run", per_category=3, seed=3)
    return run, render(run).read_text()


@pytest.fixture(scope="module")
def nano_experiment(tmp_path_factory):
    """`experiment all` (experiments/runner.py, the study's five plans) on a replayed Nano with jtop."""
    exp = replay.make_experiment_all(tmp_path_factory.mktemp("nano-exp") / "all", per_category=4, seed=1)
    return exp, render(exp).read_text()


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    run = tmp_path_factory.mktemp("golden") / "v1-twin-cpu"
    shutil.copytree(DATA / "v1-twin-cpu", run)
    return run, render(run).read_text()


def edgebench(env: dict, *args) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "orchestrator", *args], env=env, capture_output=True, text=True,
                         timeout=HANG_S)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res


@pytest.fixture(scope="module", params=(*GPU_SAMPLERS, "none"))
def twin_run(request, tmp_path_factory, llama_bin_dir, tiny_model):
    """A real `edgebench run` of the tiny twin, one query a category of the default workload,
    sampled every 10 ms, with the GPU sampler of the param on its fake board; rendered."""
    tmp = tmp_path_factory.mktemp(f"twin-{request.param}")
    env, args, close = board(tmp, request.param)
    try:
        # one thread: main's spinning threads crawl when a sampler takes one of 2 cores
        edgebench(env, "run", "--binary", str(llama_bin_dir / "main"), "--model", str(tiny_model),
                  "--workload", str(default_workload()), "--limit", "1", "--reports-dir", str(tmp / "out"),
                  "--threads", "1", "--interval", "0.01", *args)
    finally:
        if close:
            close()
    run = next(p for p in (tmp / "out").iterdir() if p.is_dir())
    return request.param, run, render(run).read_text()


@pytest.fixture(scope="module")
def twin_experiment(tmp_path_factory, llama_bin_dir, tiny_model):
    """A real-twin `edgebench experiment all` with jtop on its fake board: four queries a category of
    the default workload (enough lengths for every plan's selection rule)."""
    tmp = tmp_path_factory.mktemp("twin-all")
    rows, seen = [], {}
    for r in read_jsonl(default_workload()):
        seen[r["category"]] = seen.get(r["category"], 0) + 1
        if seen[r["category"]] <= 4:
            rows.append(r)
    wl = tmp / "small.jsonl"
    wl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    env, _, _ = board(tmp, "jtop")
    edgebench(env, "experiment", "all", "--binary", str(llama_bin_dir / "main"), "--model", str(tiny_model),
              "--workload", str(wl), "--reports-dir", str(tmp / "out"), "--threads", "1")
    exp = next(p for p in (tmp / "out").iterdir() if p.is_dir())
    return exp, render(exp).read_text()


def test_queries_shorter_than_one_sampling_interval_still_have_their_cpu_use(tmp_path, llama_bin_dir, tiny_model):
    """At the default 0.5 s a fast board's short queries get one process reading, whose CPU share is 0
    by construction: their CPU use comes from the kernel's count of main's life instead."""
    env, args, _ = board(tmp_path, "none")
    edgebench(env, "run", "--binary", str(llama_bin_dir / "main"), "--model", str(tiny_model),
              "--workload", str(default_workload()), "--limit", "1", "--reports-dir", str(tmp_path / "out"),
              "--threads", "1", "--interval", "3600", *args)
    run = next(p for p in (tmp_path / "out").iterdir() if p.is_dir())
    recs = [r for r in records(run) if r["status"] == "ok"]
    assert recs
    shares = [s for s in read_jsonl(run / "samples.jsonl") if s["sampler"] == "process" and s.get("dt_s")]
    assert shares == []  # not one reading with a CPU share: the readings alone could draw nothing
    cores = json.loads((run / "manifest.json").read_text())["platform"]["cpu_count"]
    for r in recs:
        assert r[F.CPU_LIFE_PCT_NORM] == pytest.approx(r[F.MAIN_CPU_S] / r[F.TOTAL_S] * 100 / cores, abs=0.01)
        assert r[F.CPU_LIFE_PCT_NORM] > 0
        assert r[F.CPU_MEAN_PCT] == pytest.approx(r[F.CPU_LIFE_PCT_NORM] * cores, abs=0.01 * cores)
    page = render(run).read_text()
    for fig_id in ("cpu-util", "util-timeline"):  # CI's fast host met this: a sweep with no CPU reading at all
        assert drawn(page, fig_id), fig_id
    assert_recorded_columns_are_not_called_absent(page, recs)
    assert "CPU of the process" not in absent_line(page)


# -- every study figure the data allows -----------------------------------------------------------
def test_a_replayed_nano_run_draws_every_figure_one_run_can(nano_run):
    run, page = nano_run
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["generated"] is True and [s["name"] for s in manifest["samplers"]] == ["process", "jtop"]
    for fig_id in SINGLE_RUN:
        assert drawn(page, fig_id), fig_id
    for fig_id, role in EXPERIMENT_ONLY.items():
        block = figure_block(page, fig_id)
        assert "<img" not in block and esc(figures.EXPERIMENT_HINT[role]) in block
    assert_recorded_columns_are_not_called_absent(page, records(run))
    assert 'id="absent-energy"' not in page and 'id="absent-throttle"' not in page


def test_a_real_run_through_each_gpu_sampler_draws_what_its_data_allows(twin_run):
    sampler, run, page = twin_run
    recs = records(run)
    assert all(r["status"] == "ok" and r["samplers"] == ["process", sampler] for r in recs)
    gpu_readings = [s for s in read_jsonl(run / "samples.jsonl") if s["sampler"] == sampler]
    for fig_id in ("prompt-length", "memory-rss", "memory-rss-zoom", "cpu-util", "ttft-box", "tbt-box",
                   "total-vs-prompt", "tbt-position", "granular", "memory-time", "memory-timeline", "util-timeline"):
        assert drawn(page, fig_id), (sampler, fig_id)
    if sampler == "none":
        assert gpu_readings == []
        for fig_id in ("memory-gpu", "gpu-util"):
            assert esc(figures.GET_GPU) in figure_block(page, fig_id)
        assert 'id="absent-energy"' in page
    else:
        assert gpu_readings, f"{sampler} recorded nothing"
        assert drawn(page, "gpu-util"), sampler
        # jtop's process rows and NVML's process list give the child's GPU memory; sysfs without root
        # and tegrastats never do, and then the page says which sampler lacked it, not "no GPU sampler".
        if sampler in ("jtop", "nvml"):
            assert drawn(page, "memory-gpu")
        else:
            block = figure_block(page, "memory-gpu")
            assert "<img" not in block and f"the GPU sampler of this run ({sampler}) recorded no GPU memory" in block
        assert esc(figures.GET_GPU) not in page
        assert 'id="absent-energy"' not in page  # every one of them read a power rail
    for fig_id in EXPERIMENT_ONLY:
        assert not drawn(page, fig_id)
    assert_recorded_columns_are_not_called_absent(page, recs)
    # the twin's text is noise of any bytes; it reaches the page escaped, with the twin's banner, and the
    # KV cache computed from its GGUF metadata is the one llama.cpp allocated
    assert "<script" not in page.lower() and 'id="twin-banner"' in page
    kv = table_rows(page, 'id="kv-table"')
    assert kv and all(r[3] == "yes" for r in kv), kv


def test_experiment_all_draws_every_study_figure(nano_experiment, twin_experiment):
    for exp, page in (nano_experiment, twin_experiment):
        assert sorted(re.findall(r'<figure id="fig-([a-z-]+)"', page)) == sorted(ALL_IDS)  # every figure named
        for fig_id in ALL_IDS:
            assert drawn(page, fig_id), (exp, fig_id)
        roles = {p["name"]: index.role(p["plan"]) for p in index.read(exp)["parts"]}
        assert sorted(roles.values()) == sorted([index.CATEGORIES, index.GRANULAR, index.OUTPUT_SWEEP,
                                                 index.PROMPT_SWEEP, index.MATCHED_PAIR])
        assert [r[2] for r in table_rows(page, 'id="parts"')] == list(roles.values())
        parts = {p["name"]: records(exp / p["run_dir"]) for p in index.read(exp)["parts"]}
        every = [r for recs in parts.values() for r in recs]
        assert_recorded_columns_are_not_called_absent(page, every)
        # what only a finer-sampled part caught is said so, not called unrecorded (a 0.5 s categories
        # part misses the tiny twin's prefill as often as not; its 10 ms parts catch it)
        cats = next(recs for name, recs in parts.items() if roles[name] == index.CATEGORIES)
        m = re.search(r'<p class="absent" id="absent-in-part">[^:]*: (.*?)\.\n', page, re.S)
        for col, label, _unit, _scale in analysis.METRICS:
            if m and re.search(rf"(?:^|, ){re.escape(label)}(?:, |$)", html.unescape(m.group(1))):
                assert not any(r.get(col) not in (None, []) for r in measured_ok(cats)), col
                assert any(r.get(col) not in (None, []) for r in measured_ok(every)), col


def test_experiment_statistics_come_from_its_categories_part_only(twin_experiment):
    exp, page = twin_experiment
    part = next(p for p in index.read(exp)["parts"] if index.role(p["plan"]) == index.CATEGORIES)
    ok = [r for r in records(exp / part["run_dir"]) if r["status"] == "ok"]
    rows = {r[0]: r for r in table_rows(page, 'data-metric="ttft_s"')}
    for cat in {r["category"] for r in ok}:
        v = np.array([r["ttft_s"] for r in ok if r["category"] == cat]) * 1e3
        assert rows[cat][1] == str(len(v)) and rows[cat][2] == fmt(v.mean())


def test_the_output_sweep_and_the_pair_show_what_was_asked(nano_experiment, twin_experiment):
    for _exp, page in (nano_experiment, twin_experiment):
        svg = base64.b64decode(re.search(r"base64,([^\"]+)", figure_block(page, "output-sweep")).group(1)).decode()
        # matplotlib keeps each text as a comment: the legend lists the sweep in max_tokens order, and the
        # twin runs with --ignore-eos, so each generated exactly what it was asked
        labels = re.findall(r"<!-- (max_tokens=\d+ \(\d+ generated\)) -->", svg)
        assert labels == [f"max_tokens={n} ({n} generated)" for n in (10, 50, 120, 230, 400)], labels
        pair = figure_block(page, "pair-total")
        # in the plan's order, with the interval its warm-up and repetitions give
        assert re.search(r"contextual minus task-oriented: [+-]\d+\.\d{3} s \(95% interval [+-]", pair), pair
        assert "output tokens: contextual 50, task-oriented 50" in pair


# -- numbers, text and files ---------------------------------------------------------------------
def test_per_category_statistics_match_a_direct_computation(nano_run):
    run, page = nano_run
    recs = [r for r in records(run) if r["status"] == "ok"]
    checks = {"ttft_s": 1e3, "total_s": 1.0, "peak_rss_bytes": 1e-6, "gpu_load_decode_mean_pct": 1.0,
              "gpu_mem_peak_bytes": 1e-6, "energy_per_token_j": 1e3}
    for key, scale in checks.items():
        rows = {r[0]: r for r in table_rows(page, f'data-metric="{key}"')}
        for cat in replay.CATEGORIES:
            v = np.array([r[key] for r in recs if r["category"] == cat]) * scale
            n, mean, p50, p90, p99, ci, std = rows[cat][1:]
            assert int(n) == len(v) == 3
            assert mean == fmt(v.mean()) and std == fmt(v.std(ddof=1))
            assert [p50, p90, p99] == [fmt(np.percentile(v, q)) for q in (50, 90, 99)]
            half = 4.3027 * v.std(ddof=1) / np.sqrt(len(v))  # t(0.975, df=2), to the 4 decimals stats.py holds
            assert ci == f"{fmt(v.mean() - half)} – {fmt(v.mean() + half)}"
    # TBT pools every gap of the category
    rows = {r[0]: r for r in table_rows(page, 'data-metric="tbt_s"')}
    for cat in replay.CATEGORIES:
        gaps = np.array([x for r in recs if r["category"] == cat for x in r["tbt_s"]]) * 1e3
        assert rows[cat][1] == str(len(gaps)) and rows[cat][3] == fmt(np.percentile(gaps, 50))


def test_the_gpu_memory_peak_is_the_largest_reading_the_sampler_took(nano_run):
    run, _ = nano_run
    readings = [s for s in read_jsonl(run / "samples.jsonl") if s["sampler"] == "jtop"]
    for r in records(run):
        mine = [s["gpu_mem_proc_bytes"] for s in readings if s["attempt"] == r["attempt"]
                and s["t_s"] <= r["total_s"] and "gpu_mem_proc_bytes" in s]
        assert mine and r["gpu_mem_peak_bytes"] == max(mine)


def test_failures_and_timing_flags_are_counted_and_named(golden):
    _, page = golden
    rows = {r[0]: r for r in table_rows(page, 'id="failures-table"')}
    assert rows["contextual"][1:4] == ["1", "0", "crashed: 1"]
    assert rows["complex"][4] == "1"
    assert rows["all"][1:3] == ["3", "2"]
    assert "Flagged: complex-01 (complex): prefill stream 0.3000 vs llama.cpp 0.2000" in page
    # samples of an attempt without a record (killed) are not data: a 999 GB RSS would show in the zoom's range
    assert "999" not in table_rows(page, 'data-metric="peak_rss_bytes"')[-1][2]


def pages_of(run: Path) -> list[str]:
    """report.html and its per-query pages, in order."""
    pages = sorted(run.glob("queries-*.html"), key=lambda p: int(p.stem.split("-")[1]))
    return [(run / "report.html").read_text()] + [p.read_text() for p in pages]


def test_model_output_prompts_and_errors_are_escaped(golden, nano_run):
    for run, _ in (golden, nano_run):
        for page in pages_of(run):
            assert "<script" not in page.lower()
    report, queries = pages_of(golden[0])
    assert "&lt;script&gt;alert(&#39;out&#39;)&lt;/script&gt; Paris" in queries
    assert "Capital of France? &lt;script&gt;alert(&#39;prompt&#39;)&lt;/script&gt;" in queries
    for page in (report, queries):  # the crash is on the report too: it needs a look
        assert "SIGSEGV &lt;b&gt;bold&lt;/b&gt;" in page
    run, _ = nano_run
    hostile = [r for r in records(run) if replay.NASTY in (r["output_text"] or "")]
    assert hostile, "the replay's hostile output token never came out"
    queries = "".join(pages_of(run)[1:])
    assert queries.count(esc(replay.NASTY)) >= 2 * len(hostile)  # in the prompt and in the output


def test_the_page_references_nothing_outside_its_folder(golden, nano_run, nano_experiment):
    for run, _ in (golden, nano_run, nano_experiment):
        for page in pages_of(run):
            refs = re.findall(r"""(?:src|href|url)\s*[=(]\s*["']?([^"' )>]+)""", page)
            assert refs
            for ref in refs:
                if ref.startswith("data:"):
                    continue
                assert "://" not in ref and not ref.startswith(("/", "..")), ref
                path, _, anchor = ref.partition("#")
                assert not path or (run / path).is_file(), ref
                if anchor:
                    assert f'id="{anchor}"' in ((run / path).read_text() if path else page), ref
            assert "@import" not in page and "<link" not in page


def test_a_twin_gets_a_visible_banner_and_a_real_model_none(golden, nano_run):
    assert 'id="twin-banner"' in golden[1] and "synthetic timing twin" in golden[1]
    assert 'id="twin-banner"' not in nano_run[1]


def test_kv_cache_from_gguf_metadata_beside_llama_cpp(golden, nano_run):
    # TinyLlama: 2 * 512 * 4 kv heads * 64 * 22 layers * 2 bytes = 11.00 MiB, as main reports
    rows = {r[0]: r for r in table_rows(golden[1], 'id="kv-table"')}
    assert rows["512"][1:] == ["11.00", "11.00", "yes"]
    assert rows["576"][1:] == ["12.38", "12.50", "no"]  # the hand-built record disagrees on purpose
    assert table_rows(nano_run[1], 'id="kv-table"')[0][:2] == ["512", "11.00"]
    kv = table_rows(nano_run[1], 'id="kv-table"')
    assert kv and all(r[3] == "yes" for r in kv), kv


def test_decode_speed_as_a_fraction_of_the_nano_roofline(nano_run):
    run, page = nano_run
    recs = [r for r in records(run) if r["status"] == "ok"]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["platform"]["profile"] == "jetson-nano"
    ceiling = 25.6e9 / manifest["model"]["size_bytes"]
    rows = {r[0]: r for r in table_rows(page, 'id="roofline-table"')}
    med = float(np.median([r["decode_tok_s"] for r in recs]))
    assert rows["all"][1:] == [fmt(med, 1), f"{fmt(100 * med / ceiling, 1)}%"]


def test_tbt_trend_against_position(golden):
    rows = {r[0]: r for r in table_rows(golden[1], 'id="tbt-trend-table"')}
    # simple-01's gaps 50, 60, 70 ms at positions 1, 2, 3: 10 ms per token
    assert rows["simple"][1:4] == ["3", "3", "1,000.000"]


def test_export_csv_and_parquet_hold_every_attempt_with_the_documented_columns(nano_run, twin_experiment):
    names = [c for c, _, _ in export.COLUMNS]
    for run, recs in ((nano_run[0], records(nano_run[0])),
                      (twin_experiment[0], [r for p in index.read(twin_experiment[0])["parts"]
                                            for r in records(twin_experiment[0] / p["run_dir"])])):
        csv, pq = pl.read_csv(run / "queries.csv", infer_schema_length=None), pl.read_parquet(run / "queries.parquet")
        assert csv.columns == names and pq.columns == names
        assert pq.height == len(recs)
        assert sorted(pq["ttft_s"].to_list()) == sorted(r["ttft_s"] for r in recs)
        for col in (F.GPU_MEM_PEAK_BYTES, F.GPU_LOAD_DECODE_MEAN_PCT, F.ENERGY_J):
            assert sorted(pq[col].drop_nulls().to_list()) == sorted(r[col] for r in recs if r.get(col) is not None)
            assert pq[col].drop_nulls().len() > 0, col


def test_rendering_changes_no_data_and_reads_a_run_still_being_written(tmp_path):
    run = tmp_path / "live"
    shutil.copytree(DATA / "v1-twin-cpu", run)
    partial = '{"query_id": "complex-02", "category": "complex", "attempt": "a4", "sta'
    with open(run / "queries.jsonl", "a") as f:
        f.write(partial)  # an append in progress
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in run.iterdir() if p.is_file()}
    page = render(run).read_text()
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in run.iterdir() if p.is_file()}
    assert {k: after[k] for k in before} == before
    assert set(after) - set(before) == {"report.html", "summary.json", "queries-1.html", "queries.csv",
                                        "queries.parquet"}
    assert table_rows(page, 'id="failures-table"')[-1][1] == "3"


def test_repetitions_show_their_spread_and_warmups_stay_out(tmp_path):
    run = replay.make_run(tmp_path / "reps", per_category=1, warmup=1, repeat=3, categories=("simple",),
                          granular_s=None)
    page = render(run).read_text()
    recs = [r for r in records(run) if r["phase"] == "measure"]
    ttft = np.array([r["ttft_s"] for r in recs]) * 1e3
    row = table_rows(page, 'id="repetitions"')[0]
    assert row[:4] == ["simple-01", "-", "simple", "3"]
    assert row[4] == fmt(ttft.mean()) and row[6] == fmt(100 * ttft.std(ddof=1) / ttft.mean(), 1)
    assert table_rows(page, 'data-metric="ttft_s"')[0][1] == "3"
    assert "1 warm-up attempts are left out" in page


def test_a_part_not_run_yet_is_listed_and_its_figure_says_how_to_get_it(nano_experiment, tmp_path):
    exp = tmp_path / "all"
    shutil.copytree(nano_experiment[0], exp)
    data = index.read(exp)
    pair = next(p for p in data["parts"] if index.role(p["plan"]) == index.MATCHED_PAIR)
    shutil.rmtree(exp / pair["run_dir"])  # as `experiment all` leaves a part it has not reached
    pair["status"] = "pending"
    index.write(exp, {**data, "status": "interrupted"})
    page = render(exp).read_text()
    assert table_rows(page, 'id="parts"')[-1][-1] == "not run yet: its figures are absent"
    assert esc(figures.EXPERIMENT_HINT[index.MATCHED_PAIR]) in figure_block(page, "pair-total")
    assert drawn(page, "output-sweep") and drawn(page, "prompt-sweep")


def test_index_lists_every_run_and_experiment_with_headline_figures(tmp_path, monkeypatch, nano_experiment):
    monkeypatch.setenv("EDGEBENCH_ROOT", str(tmp_path))
    reports = tmp_path / "reports"
    a = replay.make_run(reports / "20261120-100000-aaaa", per_category=1, granular_s=None)
    shutil.copytree(DATA / "v1-twin-cpu", reports / "v1-twin-cpu")
    shutil.copytree(nano_experiment[0], reports / "all-exp")
    (reports / "all-exp" / "report.html").unlink()
    res = CliRunner().invoke(main, ["report", str(a)])
    assert res.exit_code == 0, res.output
    page = (reports / "index.html").read_text()
    rows = {r[0]: r for r in table_rows(page, 'id="runs"')}
    ok = [r for r in records(a) if r["status"] == "ok"]
    manifest = json.loads((a / "manifest.json").read_text())
    assert rows[a.name][1:5] == [manifest["created_at"],
                                 f"NVIDIA Jetson Nano Developer Kit ({manifest['platform']['hostname']})", "MAXN",
                                 "TinyLlama-1.1B-Chat-v1.0 (replayed vocabulary, no weights) Q5_K_M"]
    assert rows[a.name][5] == fmt(1e3 * float(np.percentile([r["ttft_s"] for r in ok], 50)), 1)
    assert rows[a.name][9] == "report" and f'href="{a.name}/report.html"' in page
    assert rows["v1-twin-cpu"][8] == "1 of 3"
    assert "not rendered: edgebench report reports/v1-twin-cpu" in rows["v1-twin-cpu"][9]
    assert "not rendered: edgebench report reports/all-exp" in rows["all-exp (experiment)"][9]
    assert not (reports / "all-exp" / "index.html").exists()


def test_compare_shows_ratios_and_refuses_different_models_unless_forced(tmp_path):
    a = replay.make_run(tmp_path / "a", per_category=2, categories=("simple",), granular_s=None, seed=1)
    b = replay.make_run(tmp_path / "b", per_category=2, categories=("simple",), granular_s=None, seed=2)
    res = CliRunner().invoke(main, ["report", "--compare", str(a), str(b)])
    assert res.exit_code == 0, res.output
    page = (tmp_path / "compare-a-vs-b.html").read_text()
    ta = np.median([r["ttft_s"] for r in records(a)])
    tb = np.median([r["ttft_s"] for r in records(b)])
    row = re.search(r'data-metric="ttft_s" data-category="simple">(.*?)</tr>', page, re.S).group(1)
    assert f'<td class="ratio">{tb / ta:,.3f}</td>' in row

    other = tmp_path / "c"
    shutil.copytree(b, other)
    m = json.loads((other / "manifest.json").read_text())
    m["model"]["sha256"] = "f" * 64
    (other / "manifest.json").write_text(json.dumps(m))
    res = CliRunner().invoke(main, ["report", "--compare", str(a), str(other)])
    assert res.exit_code != 0
    assert "differ in model" in res.output and "--force" in res.output
    res = CliRunner().invoke(main, ["report", "--compare", str(a), str(other), "--force"])
    assert res.exit_code == 0, res.output
    assert 'id="forced"' in (tmp_path / "compare-a-vs-c.html").read_text()


def test_a_folder_that_is_not_a_run_is_refused_with_the_fix(tmp_path):
    res = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert res.exit_code != 0
    assert "neither a run folder nor an experiment folder" in res.output and "fix: pass reports/<run_id>/" in res.output


def test_bench_hook_renders_a_replayed_run_in_a_child_and_measures_it(tmp_path, monkeypatch):
    from orchestrator.report import benchfig

    monkeypatch.setattr(benchfig, "PER_CATEGORY", 2)  # the bench uses 100; the shape is what is tested here
    figs = benchfig.report_bench_figures(tmp_path)
    run = tmp_path / "report-bench-run"
    assert len(records(run)) == 10 and figs["report_queries"] == 10
    assert json.loads((run / "manifest.json").read_text())["generated"] is True
    assert (run / "report.html").is_file()
    # the child imports polars, plotnine and matplotlib: far more than an idle interpreter's 10 MB
    assert 50e6 < figs["report_peak_rss_bytes"] < 2e9
    assert figs["report_render_s"] > 0


def test_bench_scale_hook_measures_the_page_and_the_query_pages_against_the_small_render(tmp_path, monkeypatch):
    from orchestrator import bench
    from orchestrator.report import benchfig

    monkeypatch.setattr(benchfig, "PER_CATEGORY", 1)
    monkeypatch.setattr(benchfig, "SCALE_PER_CATEGORY", 3)  # the bench uses 2 000: 10 000 queries
    report, _, _ = bench._report_figures(tmp_path)
    run = tmp_path / "report-scale-run-3"
    assert report["report_10k_queries"] == len(records(run)) == 15
    pages = sorted(run.glob("queries-*.html"))
    assert [p.name for p in pages] == ["queries-1.html"]
    assert report["report_10k_page_bytes"] == (run / "report.html").stat().st_size
    size = pages[0].stat().st_size
    assert report["report_10k_query_page_bytes"] == report["report_10k_query_pages_total_bytes"] == size
    assert report["report_page_bytes"] == (tmp_path / "report-bench-run" / "report.html").stat().st_size
    scale = bench._scale_figures(report)
    assert scale["report_10k_render_s"] == (report["report_10k_render_s"], ("rendering 5 queries, s",
                                                                            report["report_render_s"]))
    assert set(scale) <= set(bench.TARGETS)


def test_dots_stop_at_a_cap_and_the_caption_says_so(tmp_path, monkeypatch):
    from orchestrator.report import analysis, load

    run = tmp_path / "grown"
    shutil.copytree(DATA / "v1-twin-cpu", run)
    recs = records(run)
    with open(run / "queries.jsonl", "w") as f:
        for k in range(5):
            for r in recs:
                f.write(json.dumps({**r, "attempt": f"{r['attempt']}-{k}"}) + "\n")
    src = load.load(run)
    q = load.measured(load.queries_frame(src))
    d = figures.Data(q=q, s=load.samples_frame(src), tbt=load.tbt_frame(src),
                     tbt_pos=analysis.tbt_by_position(load.tbt_frame(src))[0])
    drawn = figures.total_vs_prompt(d)
    assert "drawn as a dot" not in drawn.caption  # 10 ok queries: every one is a dot
    monkeypatch.setattr(figures, "DOTS_MAX", 4)
    for fig in (figures.total_vs_prompt(d), figures.memory_rss_zoom(d)):
        assert fig.svg and fig.caption.endswith(" Of 10 queries one in 3 is drawn as a dot (4 dots)."), fig.id


def test_the_setup_table_shows_power_mode_and_the_clocks_the_sampler_read(nano_run, golden):
    run, page = nano_run
    facts = {k: html.unescape(v) for k, v in re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", page)}
    assert facts["power mode"] == "MAXN"  # the replayed Nano's nvpmodel -q
    gpu = [s for s in read_jsonl(run / "samples.jsonl") if s["sampler"] == "jtop"]
    mhz = np.array([s["gpu_freq_mhz"] for s in gpu])
    assert facts["clocks measured"].startswith(
        f"GPU {np.median(mhz):.0f} MHz median ({mhz.min():.0f}-{mhz.max():.0f}), memory (EMC) 1600 MHz median")
    rows = dict(re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", golden[1]))
    assert rows["power mode"] == "not recorded" and rows["clocks measured"] == "not recorded"
    assert 'id="absent-throttle"' in golden[1] and 'id="absent-throttle"' not in page


def test_discarded_readings_stay_out_of_the_figures_data(tmp_path):
    from orchestrator.report import load

    run = tmp_path / "v1"
    shutil.copytree(DATA / "v1-twin-cpu", run)
    with open(run / "samples.jsonl", "a") as f:
        f.write(json.dumps({"query_id": "simple-01", "attempt": "a1", "sampler": "process", "t_s": 1.5,
                            "rss_bytes": 5, "discard": True}) + "\n")
    s = load.samples_frame(load.load(run))
    assert s.filter(pl.col("attempt") == "a1").height == 3 and 5.0 not in s["rss_bytes"].to_list()


def test_a_run_that_has_finished_no_query_yet_renders_what_is_there(tmp_path):
    run = tmp_path / "starting"
    run.mkdir()
    shutil.copy(DATA / "v1-twin-cpu" / "manifest.json", run)
    (run / "queries.jsonl").write_text("")
    page = render(run).read_text()
    assert "No query has finished in this folder yet." in page
    assert "<img" not in page
    assert page.count("Not shown: ") == len(figures.ALL)


def test_the_committed_gpu_run_draws_its_gpu_figures_and_granular_series(tmp_path):
    run = tmp_path / "nano-gpu"
    shutil.copytree(DATA / "nano-gpu", run)
    assert json.loads((run / "manifest.json").read_text())["generated"] is True
    page = render(run).read_text()
    for fig_id in SINGLE_RUN:
        assert drawn(page, fig_id), fig_id
    gpu = [s for s in read_jsonl(run / "samples.jsonl") if s["sampler"] == "jtop"]
    assert min(b["t_s"] - a["t_s"] for a, b in zip(gpu, gpu[1:], strict=False) if b["t_s"] > a["t_s"]) < 0.011
    rows = {r[0]: r for r in table_rows(page, 'data-metric="gpu_mem_peak_bytes"')}
    peaks = [max(s["gpu_mem_proc_bytes"] for s in gpu if s["attempt"] == r["attempt"] and s["t_s"] <= r["total_s"])
             / 1e6 for r in records(run)]
    assert rows["simple"][2] == fmt(float(np.mean(peaks)))


@pytest.mark.parametrize("gpu", ["jtop", "tegrastats"])
def test_a_replayed_records_figures_are_the_real_samplers_aggregate_of_its_readings(tmp_path, gpu):
    """The replay makes readings, never figures: each record's GPU figures are what the sampler
    class's own aggregate (sampling/derive.py) made of the readings stored beside it."""
    from orchestrator.sampling.derive import integrate_mw

    run = replay.make_run(tmp_path / gpu, per_category=2, categories=("task-oriented",), gpu=gpu, granular_s=None)
    readings = [s for s in read_jsonl(run / "samples.jsonl") if s["sampler"] == gpu]
    for r in records(run):
        mine = sorted((s for s in readings if s["attempt"] == r["attempt"]), key=lambda s: s["t_s"])
        assert len(mine) >= 3 and r["samplers"] == ["process", gpu]
        energy, span = integrate_mw(mine, "power_total_mw", r["total_s"])
        assert r["energy_j"] == pytest.approx(energy, abs=1e-5) and r["energy_window_s"] == pytest.approx(span)
        idle = json.loads((run / "manifest.json").read_text())["idle_power"]
        assert idle["sampler"] == gpu and idle["n"] >= 1 and r["idle_power_mw"] == idle["power_mw"]
        assert r["energy_net_j"] == pytest.approx(energy - idle["power_mw"] / 1000 * r["total_s"], abs=1e-5)
        decode = [s["gpu_load_pct"] for s in mine if r["cold_ttft_s"] <= s["t_s"] <= r["t_tok_s"][-1]]
        assert r["gpu_load_decode_n"] == len(decode) > 0
        assert r["gpu_load_decode_mean_pct"] == pytest.approx(sum(decode) / len(decode), abs=1e-3)
        assert r["temp_peak_c"] == max(v for s in mine for k, v in s.items()
                                       if k.startswith("temp_") and k != "temp_pmic_c")  # PMIC reads 100C
        assert r["peak_rss_bytes"] >= max(s["rss_bytes"] for s in read_jsonl(run / "samples.jsonl")
                                          if s["attempt"] == r["attempt"] and s["sampler"] == "process")
