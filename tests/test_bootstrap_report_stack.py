"""Bootstrap's check that the report stack imports on the board, in a child process: a wheel
that dies with "Illegal instruction" on a Cortex-A57 must not stop bootstrap or runs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from orchestrator.bootstrap import python_env
from orchestrator.bootstrap.ledger import Ledger
from orchestrator.bootstrap.steps import Context, Options


def fake_stack(folder: Path, polars_body: str) -> dict:
    """Modules named polars and plotnine that shadow the real ones for a child Python."""
    folder.mkdir(exist_ok=True)
    (folder / "polars.py").write_text(polars_body)
    (folder / "plotnine.py").write_text("")
    return dict(os.environ, PYTHONPATH=str(folder))


SIGILL = "import os, signal\nos.kill(os.getpid(), signal.SIGILL)\n"


def test_a_stack_that_dies_with_sigill_is_reported_with_where_to_render(tmp_path):
    problem = python_env.report_stack_problem(env=fake_stack(tmp_path / "fake", SIGILL))
    assert 'dies with "Illegal instruction" (SIGILL)' in problem
    assert "Runs are not affected" in problem
    assert "edgebench report reports/<run_id>" in problem and "edgebench serve" in problem


def test_a_stack_that_fails_to_import_names_the_error(tmp_path):
    problem = python_env.report_stack_problem(env=fake_stack(tmp_path / "fake", "raise ImportError('no libstdc++')\n"))
    assert "fails (ImportError: no libstdc++)" in problem


def test_a_working_stack_is_no_problem():
    assert python_env.report_stack_problem() is None


def test_bootstrap_step_goes_on_and_records_the_problem(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "fake"))
    fake_stack(tmp_path / "fake", SIGILL)
    monkeypatch.setattr(python_env, "missing_modules", lambda: [])
    logged = []
    ctx = Context(Options(root=tmp_path, cache=tmp_path / "cache"), Ledger(tmp_path / "ledger.json"), {},
                  log=logged.append)
    result = python_env.PythonEnv().run(ctx)
    assert result["report_stack"] == "unavailable"
    assert "Illegal instruction" in result["report_stack_problem"]
    assert any(line.startswith("  warning: importing the report stack") for line in logged)
    assert result["executable"] == sys.executable
