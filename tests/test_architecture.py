"""The package's layering, read from its source with ast: commands parse options and print
(no command imports another, nor a private name of any module), one function builds a
RunConfig, and measuring commands take their exit codes from orchestrator/exitcodes.py,
measure through orchestrator/measuring.py and import nothing of the report package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "orchestrator"
COMMANDS = PKG / "commands"
MEASURING = ("run", "experiment", "bench", "batch", "load")
# The measuring side never imports the report package (polars, plotnine, the page): these commands and
# the load package (bench reads a constant of report/benchfig.py to print the command it suggests).
REPORT_FREE = [COMMANDS / f"{name}.py" for name in MEASURING if name != "bench"] + \
    sorted((PKG / "load").glob("*.py"))
REPORT = "orchestrator.report"


def modules(folder: Path = PKG) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "data" not in p.relative_to(PKG).parts)


def label(path: Path) -> str:
    return str(path.relative_to(PKG.parent))


def imports(source: str) -> list[tuple[str, str | None, int]]:
    """(module, name or None, line) of every import, at any depth (commands import lazily)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(a.name, None, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            out += [(node.module, a.name, node.lineno) for a in node.names]
    return out


def command_import_faults(source: str, command: str) -> list[str]:
    """What `orchestrator/commands/<command>.py` (its source) imports that a command must not."""
    me, found = f"orchestrator.commands.{command}", []
    for module, name, line in imports(source):
        target = f"{module}.{name}" if module == "orchestrator.commands" and name else module
        if target.startswith("orchestrator.commands.") and target != me:
            found.append(f"{line}: the command module {target}")
        private = [p for p in module.split(".") + ([name] if name else []) if p.startswith("_")
                   and not p.startswith("__")]
        if private:
            found.append(f"{line}: the private {'.'.join(private)} of {module}")
    return found


def run_config_builders(source: str) -> list[str]:
    """The function around each `RunConfig(...)` call."""
    out = []

    def visit(node, where):
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else where
            if isinstance(child, ast.Call):
                f = child.func
                if getattr(f, "id", None) == "RunConfig" or getattr(f, "attr", None) == "RunConfig":
                    out.append(where)
            visit(child, inner)

    visit(ast.parse(source), "<module>")
    return out


def literal_exits(source: str) -> list[str]:
    """`sys.exit(3)`, `SystemExit(130)`...: an exit code written as a number."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        f = node.func
        is_exit = (getattr(f, "attr", None) == "exit" and getattr(f.value, "id", None) == "sys") or \
            getattr(f, "id", None) == "SystemExit"
        if is_exit and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, int):
            out.append(f"{node.lineno}: exit({node.args[0].value})")
    return out


@pytest.mark.parametrize("path", modules(COMMANDS), ids=lambda p: p.stem)
def test_a_command_imports_no_other_command_and_no_private_name(path):
    assert command_import_faults(path.read_text(encoding="utf-8"), path.stem) == []


def test_one_function_builds_a_run_config():
    builders = [f"{label(p)}:{b}" for p in modules() for b in run_config_builders(p.read_text(encoding="utf-8"))]
    assert builders == ["orchestrator/runconfig.py:resolve"]


@pytest.mark.parametrize("path", modules(COMMANDS), ids=lambda p: p.stem)
def test_commands_exit_with_named_codes(path):
    assert literal_exits(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("name", MEASURING)
def test_measuring_commands_measure_through_the_one_wrapper(name):
    """orchestrator.measuring alone takes the lock and installs the signal handlers (batch names
    LockHeld to summarise a refusal in its log)."""
    used = {(m, n) for m, n, _ in imports((COMMANDS / f"{name}.py").read_text(encoding="utf-8"))}
    assert ("orchestrator.measuring", "measuring") in used
    assert not {m for m, n in used if m == "orchestrator.interrupts" or (m == "orchestrator.measurelock"
                                                                          and n != "LockHeld")}


def report_imports(source: str) -> list[str]:
    return [f"{line}: {module}" + (f".{name}" if name else "") for module, name, line in imports(source)
            if module == REPORT or module.startswith(REPORT + ".") or (module, name) == ("orchestrator", "report")]


@pytest.mark.parametrize("path", REPORT_FREE, ids=label)
def test_the_measuring_side_imports_nothing_of_the_report(path):
    assert report_imports(path.read_text(encoding="utf-8")) == []


def test_the_checks_find_what_they_look_for():
    """Each check above, on a command that breaks every rule: none of them passes vacuously."""
    bad = ("import sys\n"
           "from orchestrator.commands.run import line_for\n"
           "from orchestrator.commands import experiment\n"
           "from orchestrator.measurelock import _holder_path\n"
           "def go():\n"
           "    from orchestrator.config import RunConfig\n"
           "    cfg = RunConfig(binary=1)\n"
           "    sys.exit(3)\n"
           "    raise SystemExit(130)\n"
           "    from orchestrator.report.verdict import parse_slo\n"
           "    import orchestrator.report\n"
           "    from orchestrator import report, store\n")
    assert command_import_faults(bad, "batch") == [
        "2: the command module orchestrator.commands.run", "3: the command module orchestrator.commands.experiment",
        "4: the private _holder_path of orchestrator.measurelock"]
    assert run_config_builders(bad) == ["go"]
    assert literal_exits(bad) == ["8: exit(3)", "9: exit(130)"]
    assert report_imports(bad) == ["10: orchestrator.report.verdict.parse_slo", "11: orchestrator.report",
                                   "12: orchestrator.report"]
