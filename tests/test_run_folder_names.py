"""Every name of a file or folder in a run folder is spelled in orchestrator/store.py only: the
other modules import its constants, so a renamed file cannot leave a reader looking for the old
name. The test reads the package's string constants (docstrings aside) as Python parses them."""

from __future__ import annotations

import ast
from pathlib import Path

from orchestrator import store

PKG = Path(store.__file__).parent

# The run folder's names: its data, an attempt's raw files, and what the report writes beside them.
FILE_NAMES = {store.MANIFEST, store.QUERIES, store.SAMPLES, store.LOCK, store.SCRATCH, store.RAW_STREAM,
              store.RAW_STREAM_INDEX, store.RAW_ENGINE_YAML, store.RAW_STDERR, store.RAW_MAIN_LOG,
              store.REPORT_HTML, store.SUMMARY_HTML, store.SUMMARY_JSON, store.QUERIES_CSV, store.QUERIES_PARQUET}
# Numbered names: what comes before the number.
PREFIXES = {store.QUERY_PAGE.split("{}")[0]}
# A plain word elsewhere (the "raw" prompt template): a run-folder name only as a path component.
DIR_NAMES = {store.RAW}
# The same name for a file that is not in a run folder.
ELSEWHERE = {("bootstrap/scratch.py", store.LOCK): "the lock of the machine-wide test build cache"}


def _docstrings(tree: ast.AST) -> set[int]:
    return {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and n.body
            and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}


def _template_names(tree: ast.AST) -> set[int]:
    """`env.get_template("report.html")` names a template of the package, not a file of the folder."""
    return {id(n.args[0]) for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "get_template"
            and n.args}


def _path_operand(tree: ast.AST) -> set[int]:
    """Strings joined into a path: an operand of `/`."""
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div):
            out |= {id(n.left), id(n.right)}
    return out


def spelled(source: str) -> list[tuple[int, str]]:
    """(line, string) for each string constant of `source` that spells a run-folder name."""
    tree = ast.parse(source)
    skip = _docstrings(tree) | _template_names(tree)
    joined = _path_operand(tree)
    found = []
    for n in ast.walk(tree):
        if not (isinstance(n, ast.Constant) and isinstance(n.value, str)) or id(n) in skip:
            continue
        parts = n.value.split("/")
        if (FILE_NAMES & set(parts) or any(p.startswith(x) for p in parts for x in PREFIXES)
                or (DIR_NAMES & set(parts) and (len(parts) > 1 or id(n) in joined))):
            found.append((n.lineno, n.value))
    return found


def test_no_module_but_the_store_spells_a_run_folder_name():
    found = []
    for path in sorted(PKG.rglob("*.py")):
        if path == PKG / "store.py":
            continue
        rel = str(path.relative_to(PKG))
        for line, value in spelled(path.read_text(encoding="utf-8")):
            if (rel, value) not in ELSEWHERE:
                found.append(f"{rel}:{line}: {value!r}")
    assert found == [], "import the name from orchestrator/store.py instead:\n" + "\n".join(found)


def test_the_check_sees_the_spellings_it_forbids():
    """What the walk above would miss, it would pass silently: each way a name is spelled is caught."""
    source = '''
"""a docstring may say manifest.json"""
def f(run, q):
    """and so may this one: raw/<query>/stream.json"""
    a = run / "manifest.json"
    b = run / "raw" / q
    c = f"{run}/raw/{q}/stderr.log"
    d = env.get_template("report.html")
    e = "raw"  # a prompt template's name
    return {"queries.csv": 1, f"queries-{q}.html": 2}
'''
    expected = ["manifest.json", "raw", "/raw/", "/stderr.log", "queries.csv", "queries-"]
    assert sorted(v for _, v in spelled(source)) == sorted(expected)
