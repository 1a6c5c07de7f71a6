"""The answer first, and one statistics engine: a run made by the real session (fake executor) is
summarised on the terminal, in its manifest's `results`, in summary.json, by `report --format md`
and on the page, and every interval reads the same to the printed digit."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakemain import FakeMain, fake_binary, write_vocab_model

from orchestrator import fields as F
from orchestrator import summary
from orchestrator.cli import main
from orchestrator.config import RunConfig
from orchestrator.report import verdict
from orchestrator.report.render import render
from orchestrator.sampling.process import ProcessSampler
from orchestrator.session import Session
from orchestrator.store import RunReader

HOSTILE = '<script>alert("x")</script>'


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("answer")
    rows = []
    for cat, n in (("simple", 3), ("complex", 4), ("contextual", 2)):
        for i in range(n):
            # the fake prefills 1 ms per prompt word, so TTFT differs from query to query
            words = " ".join(f"w{j}" for j in range(5 + 9 * i + 20 * len(cat)))
            rows.append({"id": f"{cat}-{i}", "category": cat, "prompt": f"{words} {HOSTILE}", "max_tokens": 5 + i,
                         "prompt_tokens_est": 8})
    wl = d / "w.jsonl"
    wl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = RunConfig(binary=fake_binary(d / "main"), model=write_vocab_model(d / "vocab.gguf"), workload=wl,
                    out_dir=d / "out")
    s = Session.create(cfg, warmup=1, repeat=2, samplers=[ProcessSampler(0.001)], executor=FakeMain(),
                       log=lambda *a: None)
    result = s.run()
    render(result.run_dir)
    return result.run_dir


def cells(page: str, table_id: str) -> dict[str, list[str]]:
    at = page.index(f'id="{table_id}"')
    table = page[at:page.index("</table>", at)]
    out = {}
    for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S):
        tds = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
        if tds:
            out[tds[0]] = tds
    return out


def test_terminal_manifest_summary_and_page_agree_on_every_interval(run):
    manifest_rows = {r[F.CATEGORY]: r for r in RunReader(run).manifest["results"]["by_category"]}
    terminal = summary.terminal_table(summary.rows_for(RunReader(run).queries()))
    page = (run / "report.html").read_text()
    answer = cells(page, "answer-table")
    doc = json.loads((run / verdict.SUMMARY).read_text())
    assert set(manifest_rows) == {"simple", "complex", "contextual"}
    for cat, row in manifest_rows.items():
        ttft = row["ttft"]
        assert ttft["ci_lo"] < ttft["mean"] < ttft["ci_hi"]  # the queries differ: a real interval
        printed = summary.ci_text(ttft)  # "mean [lo, hi]" in ms, one decimal
        line = next(x for x in terminal.splitlines() if x.startswith(cat))
        assert printed in line
        assert answer[cat][6] == printed
        # summary.json holds the engine's numbers themselves
        js = next(c for c in doc["categories"] if c["category"] == cat)
        assert js["ttft"] == ttft and js["tbt"] == row["tbt"] and js["decode_tok_s"] == row["decode_tok_s"]
    # the page's statistics table: the same interval at two decimals
    block = page[page.index('data-metric="ttft_s"'):]
    block = block[:block.index("</table>")]
    for cat, row in manifest_rows.items():
        ttft = row["ttft"]
        want = f"{ttft['ci_lo'] * 1e3:,.2f} – {ttft['ci_hi'] * 1e3:,.2f}"
        assert want in html.unescape(block), (cat, want)
        assert f"{ttft['std'] * 1e3:,.2f}" in block  # the sample standard deviation


def test_the_page_opens_with_the_answer_then_the_contents(run):
    page = (run / "report.html").read_text()
    assert page.index('id="answer"') < page.index('id="contents"') < page.index('id="setup"')
    for sentence in (c["sentence"] for c in json.loads((run / verdict.SUMMARY).read_text())["categories"]):
        assert html.escape(sentence, quote=False) in page or sentence in html.unescape(page)
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "<script" not in page and HOSTILE not in page


def test_a_budget_decides_pass_or_fail(run):
    res = CliRunner().invoke(main, ["report", str(run), "--no-index", "--format", "json", "--slo", "ttft=1ms"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["slo"] == {"ttft_s": 0.001, "tbt_s": 0.2}
    assert {c["verdict"] for c in doc["categories"]} == {"fail"}
    res = CliRunner().invoke(main, ["report", str(run), "--no-index", "--format", "md", "--slo", "ttft=10s,tbt=1s"])
    assert res.exit_code == 0, res.output
    lines = [x for x in res.output.splitlines() if x.startswith("| ") and "pass" in x]
    assert len(lines) == 3 and "TTFT p90 ≤ 10.00 s, TBT p90 ≤ 1.00 s" in res.output


def test_a_malformed_budget_names_the_form(run):
    res = CliRunner().invoke(main, ["report", str(run), "--no-index", "--slo", "ttft=fast"])
    assert res.exit_code == 1
    assert "cannot read 'ttft=fast'" in res.output and "--slo ttft=2s,tbt=200ms" in res.output


def test_a_run_where_every_query_failed_renders_and_says_so(tmp_path):
    rows = [{"id": f"q{i}", "category": c, "prompt": f"CRASH {c}", "max_tokens": 4, "prompt_tokens_est": 4}
            for i, c in enumerate(["simple", "complex"])]
    wl = tmp_path / "w.jsonl"
    wl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = RunConfig(binary=fake_binary(tmp_path / "main"), model=write_vocab_model(tmp_path / "vocab.gguf"),
                    workload=wl, out_dir=tmp_path / "out")
    result = Session.create(cfg, samplers=[ProcessSampler(0.001)], executor=FakeMain(), log=lambda *a: None).run()
    assert result.n_failed == 2
    res = CliRunner().invoke(main, ["report", str(result.run_dir), "--no-index"])
    assert res.exit_code == 0, res.output
    page = (result.run_dir / "report.html").read_text()
    assert "could not be drawn" not in page  # every figure says why it is absent, none crashed
    failures = cells(page, "failures-table")
    assert failures["simple"][3] == "crashed: 1" and failures["all"][2] == "0"
    doc = json.loads((result.run_dir / verdict.SUMMARY).read_text())
    assert [c["verdict"] for c in doc["categories"]] == ["no data", "no data"]


class JitterMain(FakeMain):
    """The fake executor whose first token comes 0, 3 or 7 ms later from one call to the next, so
    repetitions of a query differ and their interval has a width."""

    def __call__(self, *args, **kwargs):
        res = super().__call__(*args, **kwargs)
        shift = (0, 3_000_000, 7_000_000)[len(self.calls) % 3]
        if len(res.chunks) > 1:
            res.chunks = res.chunks[:1] + [(t + shift, b) for t, b in res.chunks[1:]]
            res.t_exit_ns += shift
        return res


def test_repetition_intervals_agree_on_terminal_manifest_and_page(tmp_path, capsys):
    from orchestrator.experiments import plans
    from orchestrator.experiments import runner as xrun
    from orchestrator.runprint import show_results

    rows = [{"id": f"{c}-{i}", "category": c, "prompt": " ".join(["w"] * (10 + 5 * i)), "max_tokens": 6,
             "prompt_tokens_est": 12} for c in ("simple", "complex") for i in range(3)]
    wl = tmp_path / "w.jsonl"
    wl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = RunConfig(binary=fake_binary(tmp_path / "main"), model=write_vocab_model(tmp_path / "vocab.gguf"),
                    workload=wl, out_dir=tmp_path / "out")
    plan = plans.from_dict({"name": "mine", "select": {"rule": "median", "categories": ["simple", "complex"]},
                            "interval_s": 0.5, "repeat": 3}, "test")
    s = xrun.start(xrun.resolve(plan, cfg), samplers=[ProcessSampler(0.001)], executor=JitterMain(),
                   log=lambda *a: None)
    s.run()
    res = xrun.finish_results(s)
    capsys.readouterr()
    show_results(res)
    terminal = capsys.readouterr().out
    manifest = RunReader(s.store.dir).manifest["results"]["ci95"]
    render(s.store.dir)
    page = html.unescape((s.store.dir / "report.html").read_text())
    assert len(manifest) == 2
    for item in manifest:
        t = item[F.TTFT_S]
        assert t["n"] == 3 and t["ci_half"] > 0
        assert f"ttft={t['mean'] * 1e3:.1f}±{t['ci_half'] * 1e3:.1f}ms" in terminal
        assert f"{t['ci_lo'] * 1e3:,.2f} – {t['ci_hi'] * 1e3:,.2f}" in page
