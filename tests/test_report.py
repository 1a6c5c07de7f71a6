"""`edgebench report`: figures or their absence sentences, numbers against a direct computation,
escaping, a self-contained page, the CSV/Parquet export, experiments, index and comparison."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import shutil
from pathlib import Path

import markupsafe
import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.report import export, figures, synth
from orchestrator.report.render import render

DATA = Path(__file__).parent / "data" / "runs"
REPO = Path(__file__).resolve().parents[1]


def esc(text: str) -> str:
    return str(markupsafe.escape(text))


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "queries.jsonl").read_text().splitlines() if line.strip()]


def figure_block(page: str, fig_id: str) -> str:
    m = re.search(rf'<figure id="fig-{fig_id}".*?</figure>', page, re.S)
    assert m, f"figure {fig_id} missing from the page"
    return m.group(0)


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


def fmt(x: float, digits: int = 2) -> str:
    return f"{x:,.{digits}f}"


@pytest.fixture(scope="module")
def gpu_run(tmp_path_factory):
    run = synth.make_run(tmp_path_factory.mktemp("gpu") / "nano-run", per_category=3, seed=3)
    page = render(run).read_text()
    return run, page


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    run = tmp_path_factory.mktemp("golden") / "v1-twin-cpu"
    shutil.copytree(DATA / "v1-twin-cpu", run)
    return run, render(run).read_text()


STUDY = ["prompt-length", "memory-rss", "memory-rss-zoom", "memory-gpu", "cpu-util", "gpu-util", "ttft-box",
         "tbt-box", "total-vs-prompt", "tbt-position", "granular", "memory-time"]


def test_a_run_with_gpu_samples_has_every_figure_of_the_study(gpu_run):
    _, page = gpu_run
    for fig_id in STUDY:
        block = figure_block(page, fig_id)
        assert '<img src="data:image/svg+xml;base64,' in block, fig_id
        assert "Not shown" not in block
    # the experiment figures need an experiment folder and say how to get one
    for fig_id, hint in (("output-sweep", "output"), ("prompt-sweep", "prompt"), ("pair-total", "pair")):
        block = figure_block(page, fig_id)
        assert "<img" not in block
        assert esc(figures.EXPERIMENT_HINT[hint]) in block


def test_without_gpu_telemetry_each_gpu_figure_is_one_sentence_saying_how_to_get_it(golden):
    _, page = golden
    for fig_id in ("memory-gpu", "gpu-util"):
        block = figure_block(page, fig_id)
        assert "<img" not in block and esc(figures.GET_GPU) in block
    assert esc(figures.GET_GRANULAR) in figure_block(page, "granular")
    # the CPU figures are still drawn from the process sampler
    for fig_id in ("memory-rss", "cpu-util", "ttft-box", "memory-time"):
        assert "<img" in figure_block(page, fig_id), fig_id
    assert "Not recorded in this folder: GPU load during prefill" in page
    assert "Energy per token is absent" in page
    assert "pass edgebench report --bandwidth-gbs N" in page


def test_per_category_statistics_match_a_direct_computation(gpu_run):
    run, page = gpu_run
    recs = [r for r in records(run) if r["status"] == "ok"]
    checks = {"ttft_s": 1e3, "total_s": 1.0, "peak_rss_bytes": 1e-6, "gpu_load_decode_mean_pct": 1.0,
              "energy_per_token_j": 1e3}
    for key, scale in checks.items():
        rows = {r[0]: r for r in table_rows(page, f'data-metric="{key}"')}
        for cat in synth.PROMPT_TOKENS:
            v = np.array([r[key] for r in recs if r["category"] == cat]) * scale
            n, mean, p50, p90, p99, ci, std = rows[cat][1:]
            assert int(n) == len(v)
            assert mean == fmt(v.mean()) and std == fmt(v.std(ddof=1))
            assert [p50, p90, p99] == [fmt(np.percentile(v, q)) for q in (50, 90, 99)]
            half = 4.303 * v.std(ddof=1) / np.sqrt(len(v))  # t(0.975, df=2)
            assert ci == f"{fmt(v.mean() - half)} – {fmt(v.mean() + half)}"
    # TBT pools every gap of the category
    rows = {r[0]: r for r in table_rows(page, 'data-metric="tbt_s"')}
    for cat in synth.PROMPT_TOKENS:
        gaps = np.array([x for r in recs if r["category"] == cat for x in r["tbt_s"]]) * 1e3
        assert rows[cat][1] == str(len(gaps)) and rows[cat][3] == fmt(np.percentile(gaps, 50))


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


def test_model_output_prompts_and_errors_are_escaped(golden, gpu_run):
    for run, _ in (golden, gpu_run):
        for page in pages_of(run):
            assert "<script" not in page.lower()
    report, queries = pages_of(golden[0])
    assert "&lt;script&gt;alert(&#39;out&#39;)&lt;/script&gt; Paris" in queries
    assert "Capital of France? &lt;script&gt;alert(&#39;prompt&#39;)&lt;/script&gt;" in queries
    for page in (report, queries):  # the crash is on the report too: it needs a look
        assert "SIGSEGV &lt;b&gt;bold&lt;/b&gt;" in page
    assert esc(synth.NASTY) in pages_of(gpu_run[0])[1]


def test_the_page_references_nothing_outside_its_folder(golden, gpu_run):
    for run, _ in (golden, gpu_run):
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


def test_a_twin_gets_a_visible_banner_and_a_real_model_none(golden, gpu_run):
    assert 'id="twin-banner"' in golden[1] and "synthetic timing twin" in golden[1]
    assert 'id="twin-banner"' not in gpu_run[1]


def test_kv_cache_from_gguf_metadata_beside_llama_cpp(golden, gpu_run):
    # TinyLlama: 2 * 512 * 4 kv heads * 64 * 22 layers * 2 bytes = 11.00 MiB, as main reports
    rows = {r[0]: r for r in table_rows(golden[1], 'id="kv-table"')}
    assert rows["512"][1:] == ["11.00", "11.00", "yes"]
    assert rows["576"][1:] == ["12.38", "12.50", "no"]  # the hand-built record disagrees on purpose
    for r in table_rows(gpu_run[1], 'id="kv-table"'):
        assert r[3] == "yes"


def test_decode_speed_as_a_fraction_of_the_nano_roofline(gpu_run):
    run, page = gpu_run
    recs = [r for r in records(run) if r["status"] == "ok"]
    ceiling = 25.6e9 / synth.TINYLLAMA["size_bytes"]
    rows = {r[0]: r for r in table_rows(page, 'id="roofline-table"')}
    med = float(np.median([r["decode_tok_s"] for r in recs]))
    assert rows["all"][1:] == [fmt(med, 1), f"{fmt(100 * med / ceiling, 1)}%"]


def test_tbt_trend_against_position(golden):
    rows = {r[0]: r for r in table_rows(golden[1], 'id="tbt-trend-table"')}
    # simple-01's gaps 50, 60, 70 ms at positions 1, 2, 3: 10 ms per token
    assert rows["simple"][1:4] == ["3", "3", "1,000.000"]


def test_export_csv_and_parquet_hold_every_attempt_with_the_documented_columns(gpu_run):
    run, _ = gpu_run
    names = [c for c, _, _ in export.COLUMNS]
    csv, pq = pl.read_csv(run / "queries.csv"), pl.read_parquet(run / "queries.parquet")
    assert csv.columns == names and pq.columns == names
    recs = records(run)
    assert pq.height == len(recs)
    assert pq["ttft_s"].to_list() == [r["ttft_s"] for r in recs]
    assert pq["gpu_mem_peak_bytes"].to_list() == [r["gpu_mem_peak_bytes"] for r in recs]
    assert (REPO / "docs" / "report-columns.md").read_text() == export.columns_markdown()


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
    run = synth.make_run(tmp_path / "reps", per_category=1, repetitions=3, categories=("simple",), granular_s=None)
    page = render(run).read_text()
    recs = [r for r in records(run) if r["phase"] == "measure"]
    ttft = np.array([r["ttft_s"] for r in recs]) * 1e3
    row = table_rows(page, 'id="repetitions"')[0]
    assert row[:4] == ["simple-01", "-", "simple", "3"]
    assert row[4] == fmt(ttft.mean()) and row[6] == fmt(100 * ttft.std(ddof=1) / ttft.mean(), 1)
    assert table_rows(page, 'data-metric="ttft_s"')[0][1] == "3"
    assert "1 warm-up attempts are left out" in page


def test_experiment_folders_draw_the_sweeps_and_the_pair(tmp_path):
    out = synth.make_experiment(tmp_path / "out-sweep", "output-sweep", {
        "sweep": {"per_category": 1, "categories": ("simple",), "variants": (10, 20, 40, 80, 100),
                  "granular_s": 0.05}})
    pair = synth.make_experiment(tmp_path / "pair", "pair", {
        "pair": {"per_category": 1, "categories": ("contextual", "task-oriented"), "repetitions": 2,
                 "granular_s": None}})
    prompt = synth.make_experiment(tmp_path / "prompt", "prompt-sweep", {
        "short": {"per_category": 1, "categories": ("simple",), "granular_s": None},
        "long": {"per_category": 1, "categories": ("contextual",), "granular_s": None},
        "later": None})
    page = render(out).read_text()
    assert "<img" in figure_block(page, "output-sweep")
    svg = base64.b64decode(re.search(r"base64,([^\"]+)", figure_block(page, "output-sweep")).group(1)).decode()
    # matplotlib keeps each text as a comment: the legend lists the sweep in max_tokens order
    assert re.findall(r"<!-- (max_tokens=\d+) -->", svg) == [f"max_tokens={n}" for n in (10, 20, 40, 80, 100)]
    assert "<img" not in figure_block(page, "pair-total")
    page = render(pair).read_text()
    assert "<img" in figure_block(page, "pair-total")
    reps = table_rows(page, 'id="repetitions"')
    assert [r[0] for r in reps] == ["contextual-01 (pair)", "task-oriented-01 (pair)"] and reps[0][3] == "2"
    page = render(prompt).read_text()
    assert "<img" in figure_block(page, "prompt-sweep")
    assert table_rows(page, 'id="parts"')[2] == ["later", "later", "not run yet: its figures are absent"]


def test_an_experiment_without_gpu_samples_says_why_its_sweep_is_absent(tmp_path):
    exp = synth.make_experiment(tmp_path / "cpu-sweep", "output-sweep", {
        "sweep": {"per_category": 1, "categories": ("simple",), "variants": (10, 20), "gpu": False,
                  "granular_s": None}})
    block = figure_block(render(exp).read_text(), "output-sweep")
    assert "the sweep is here but has no GPU memory readings" in block


def test_index_lists_every_run_and_experiment_with_headline_figures(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_ROOT", str(tmp_path))
    reports = tmp_path / "reports"
    a = synth.make_run(reports / "20261120-100000-aaaa", per_category=1, granular_s=None)
    shutil.copytree(DATA / "v1-twin-cpu", reports / "v1-twin-cpu")
    synth.make_experiment(reports / "pair-exp", "pair", {
        "pair": {"per_category": 1, "categories": ("contextual", "task-oriented"), "granular_s": None}})
    res = CliRunner().invoke(main, ["report", str(a)])
    assert res.exit_code == 0, res.output
    page = (reports / "index.html").read_text()
    rows = {r[0]: r for r in table_rows(page, 'id="runs"')}
    ok = [r for r in records(a) if r["status"] == "ok"]
    assert rows[a.name][1:5] == ["2026-11-20T10:00:00+00:00", "NVIDIA Jetson Nano Developer Kit (nano)", "MAXN",
                                 "TinyLlama-1.1B-Chat-v1.0 Q5_K_M"]
    assert rows[a.name][5] == fmt(1e3 * float(np.percentile([r["ttft_s"] for r in ok], 50)), 1)
    assert rows[a.name][9] == "report" and f'href="{a.name}/report.html"' in page
    assert rows["v1-twin-cpu"][8] == "1 of 3"
    assert "not rendered: edgebench report reports/v1-twin-cpu" in rows["v1-twin-cpu"][9]
    # with no folder given, every run is rendered and the index links them all
    res = CliRunner().invoke(main, ["report"])
    assert res.exit_code == 0, res.output
    page = (reports / "index.html").read_text()
    assert 'href="v1-twin-cpu/report.html"' in page and 'href="pair-exp/report.html"' in page
    assert {r[0]: r for r in table_rows(page, 'id="runs"')}["pair-exp (experiment)"][8] == "0 of 2"
    assert not (reports / "pair-exp" / "index.html").exists()


def test_compare_shows_ratios_and_refuses_different_models_unless_forced(tmp_path):
    a = synth.make_run(tmp_path / "a", per_category=2, categories=("simple",), granular_s=None, seed=1)
    b = synth.make_run(tmp_path / "b", per_category=2, categories=("simple",), granular_s=None, seed=2)
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


@pytest.mark.slow
def test_a_real_run_of_the_timing_twin_renders(tmp_path, llama_bin_dir, tiny_model, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_ROOT", str(tmp_path))
    out = tmp_path / "reports"
    res = CliRunner().invoke(main, ["run", "--binary", str(llama_bin_dir / "main"), "--model", str(tiny_model),
                                    "--out", str(out), "--workload", str(REPO / "workloads" / "default.jsonl"),
                                    "--limit", "1", "--interval", "0.01"])
    assert res.exit_code == 0, res.output
    run = next(p for p in out.iterdir() if p.is_dir())
    res = CliRunner().invoke(main, ["report", str(run)])
    assert res.exit_code == 0, res.output
    page = (run / "report.html").read_text()
    assert 'id="twin-banner"' in page
    for fig_id in ("prompt-length", "memory-rss", "ttft-box", "tbt-box", "total-vs-prompt", "granular"):
        assert "<img" in figure_block(page, fig_id), fig_id
    samplers = json.loads((run / "manifest.json").read_text())["samplers"]
    assert esc(figures.GET_GPU) in figure_block(page, "gpu-util"), samplers
    # the KV cache computed from the twin's GGUF metadata is the one llama.cpp allocated
    kv = table_rows(page, 'id="kv-table"')
    assert kv and all(r[3] == "yes" for r in kv), kv
    recs = records(run)
    assert table_rows(page, 'id="failures-table"')[-1][1] == str(len(recs))
    assert (out / "index.html").is_file()


def test_bench_hook_renders_a_generated_run_in_a_child_and_measures_it(tmp_path, monkeypatch):
    from orchestrator.report import benchfig

    monkeypatch.setattr(benchfig, "PER_CATEGORY", 2)  # the bench uses 100; the shape is what is tested here
    figs = benchfig.report_bench_figures(tmp_path)
    run = tmp_path / "report-bench-run"
    assert len(records(run)) == 10 and figs["report_queries"] == 10
    assert (run / "report.html").is_file()
    # the child imports polars, plotnine and matplotlib: far more than an idle interpreter's 10 MB
    assert 50e6 < figs["report_peak_rss_bytes"] < 2e9
    assert 0 < figs["report_render_s"] < 120


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


def test_the_setup_table_shows_power_mode_and_the_clocks_the_sampler_read(gpu_run, golden):
    rows = re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", gpu_run[1])
    facts = {k: html.unescape(v) for k, v in rows}
    assert facts["power mode"] == "MAXN"
    assert facts["clocks measured"] == "GPU 921 MHz median (921-921), memory (EMC) 1600 MHz median (1600-1600)"
    rows = dict(re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", golden[1]))
    assert rows["power mode"] == "not recorded" and rows["clocks measured"] == "not recorded"
    assert 'id="absent-throttle"' in golden[1] and 'id="absent-throttle"' not in gpu_run[1]


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
    page = render(run).read_text()
    for fig_id in ("memory-gpu", "gpu-util", "granular", "memory-time"):
        assert "<img" in figure_block(page, fig_id), fig_id
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    gpu = [s for s in samples if s["sampler"] == "jtop"]
    assert min(b["t_s"] - a["t_s"] for a, b in zip(gpu, gpu[1:], strict=False) if b["t_s"] > a["t_s"]) < 0.011
    rows = {r[0]: r for r in table_rows(page, 'data-metric="gpu_mem_peak_bytes"')}
    peaks = [max(s["gpu_mem_bytes"] for s in gpu if s["attempt"] == r["attempt"]) / 1e6 for r in records(run)]
    assert rows["simple"][2] == fmt(float(np.mean(peaks)))
