"""Every key of the load folder (load.json, its `results`, the request and point lines) is spelled in
orchestrator/load/format.py only: the load package, its page and its command import the constants,
so a key renamed there cannot leave a writer or a reader on the old spelling. The test reads the
modules' string constants where Python uses them as keys, as it parses them (tests/test_run_folder_names.py
does the same for a run folder's file names)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from test_load_math import measured_lines

from orchestrator.load import format as fmt
from orchestrator.load import point, profile

PKG = Path(fmt.__file__).parent.parent
# the writers and readers of a load folder
MODULES = sorted({*(PKG / "load").glob("*.py"), PKG / "report" / "loadpage.py", PKG / "commands" / "load.py"}
                 - {PKG / "load" / "format.py"})
KEYS = {v for k, v in vars(fmt).items() if k.isupper() and isinstance(v, str)}
LOOKUPS = {"get", "pop", "setdefault"}


def key_positions(tree: ast.AST) -> list[ast.AST]:
    """The nodes used as a key: of a dict display, a subscript, `.get(k)`/`.pop(k)`, `k in d`."""
    out = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Dict):
            out += [k for k in n.keys if k is not None]
        elif isinstance(n, ast.Subscript):
            out.append(n.slice)
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in LOOKUPS and n.args:
            out.append(n.args[0])
        elif isinstance(n, ast.Compare) and isinstance(n.ops[0], ast.In | ast.NotIn):
            out.append(n.left)
    return out


def spelled(source: str) -> list[tuple[int, str]]:
    """(line, string) for each string constant of `source` used as a key that format.py names."""
    return [(n.lineno, n.value) for n in key_positions(ast.parse(source))
            if isinstance(n, ast.Constant) and n.value in KEYS]


def test_the_load_modules_spell_no_key_of_the_format_module():
    found = [f"{p.relative_to(PKG)}:{line}: {value!r}" for p in MODULES
             for line, value in spelled(p.read_text(encoding="utf-8"))]
    assert found == [], "import the key from orchestrator/load/format.py instead:\n" + "\n".join(found)


def test_the_check_reads_the_modules_it_names():
    names = {str(p.relative_to(PKG)) for p in MODULES}
    assert {"load/point.py", "load/sweep.py", "load/benchfig.py", "load/profile.py", "load/client.py",
            "report/loadpage.py", "commands/load.py"} <= names


def test_the_check_sees_the_spellings_it_forbids():
    """What the walk above would miss, it would pass silently: each place a key is spelled is caught,
    and a key's word used as a plain value or a name of the module's own is not."""
    source = '''
"""a docstring may say goodput_rps"""
def f(p, doc, res, fmt):
    a = {"goodput_rps": 1, fmt.RATE: 2, "x": 3}
    b = res["knee"]["interval"]
    c = f"{p['rate']:g}"
    d = doc.get("status") == "complete"
    e = "prefill" in p[fmt.VALIDATION].get(fmt.SKIPPED, {})
    g = doc.pop("results", None)
    h = engine(kind="server", label="rate")
    return a, b, c, d, e, g, h
'''
    assert sorted(v for _, v in spelled(source)) == sorted(
        ["goodput_rps", "knee", "interval", "rate", "status", "prefill", "results"])


def test_the_keys_are_those_existing_folders_carry():
    """Renaming a constant's value would leave every folder written before unreadable: these are the
    spellings docs/load.md promises."""
    assert (fmt.RESULTS, fmt.RESULT_POINTS, fmt.KNEE, fmt.ANSWER, fmt.INTERVAL, fmt.FIRST_UNSUSTAINED) == (
        "results", "points", "knee", "answer", "interval", "first_unsustained")
    assert (fmt.RATE, fmt.N_SENT, fmt.N_OK, fmt.N_MET, fmt.SLO_ATTAINMENT, fmt.THROUGHPUT_RPS, fmt.GOODPUT_RPS,
            fmt.TOKEN_THROUGHPUT_TOK_S, fmt.SEND_LAG, fmt.SUSTAINED, fmt.VALIDATED, fmt.ENERGY_PER_REQUEST_J) == (
        "rate", "n_sent", "n_ok", "n_met", "slo_attainment", "throughput_rps", "goodput_rps",
        "token_throughput_tok_s", "send_lag", "sustained", "validated", "energy_per_request_j")
    assert fmt.PCT_KEYS == ("n", "mean", "p50", "p90", "p99", "max")


def test_the_command_prints_the_figures_the_sweep_wrote(tmp_path, capsys):
    """`edgebench load`'s csv and table read load.json's `results` as point.results wrote them, from
    requests the real client measured (against a socket that answers as the server does)."""
    from orchestrator.commands import load

    p = profile.Point("constant", 6, rate=20.0)
    doc = {fmt.PLAN: [{**p.to_json(), fmt.LABEL: p.label}], fmt.SLO: {"ttft_s": 60.0, "tbt_s": 60.0}, fmt.MIX: "m"}
    measured_lines(tmp_path, p, fail_every=3, doc=doc)  # 2 of 6 answered HTTP 500
    folder = tmp_path / "load"
    res = point.results(fmt.read_doc(folder), fmt.kept_requests(folder), fmt.finished_points(folder))
    load._show(res, "csv", folder)
    header, row = capsys.readouterr().out.splitlines()
    assert header.split(",") == load.COLUMNS
    cells = dict(zip(load.COLUMNS, row.split(","), strict=True))
    assert (cells["label"], cells["n_sent"], cells["n_ok"], cells["n_met"]) == ("constant 20/s", "6", "4", "4")
    assert float(cells["ttft_p90_s"]) == pytest.approx(res["points"][0]["ttft"]["p90"])
    load._show(res, "table", folder)
    out = capsys.readouterr().out
    assert "constant 20/s" in out and "  4/6" in out and "knee: - requests/s (between - and 20)" in out
    assert res["answer"] in out
