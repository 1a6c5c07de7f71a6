"""bootstrap's command line: `--redo STEP` (the old `--force STEP` still works, hidden, with a
warning), and `--json` refused where there is no plan to print."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from orchestrator.bootstrap import profiles
from orchestrator.cli import main


@pytest.fixture
def executed(isolated_root, monkeypatch):
    """What the real run would be handed: the options (steps to redo among them)."""
    seen = []
    monkeypatch.setattr(profiles, "execute", lambda ctx, steps, pre, pack: seen.append(ctx.options) or ([], None))
    return seen


def bootstrap(*args):
    return CliRunner().invoke(main, ["bootstrap", "--profile", "host", *args])


def test_redo_names_the_steps_to_redo(executed):
    res = bootstrap("--redo", "patch", "--redo", "build")
    assert res.exit_code == 0, res.output
    assert executed[0].force == ("patch", "build") and "warning" not in res.stderr


def test_the_old_force_step_still_works_and_says_its_new_name(executed):
    res = bootstrap("--force", "patch")
    assert res.exit_code == 0, res.output
    assert executed[0].force == ("patch",)
    assert "warning: `--force STEP` is now `--redo STEP` (`--redo patch`)" in res.stderr


def test_the_old_spelling_is_hidden_from_help():
    out = CliRunner().invoke(main, ["bootstrap", "--help"]).output
    assert "--redo STEP" in out and "--force" not in out


@pytest.mark.parametrize("spelling", [("--format", "json"), ("--json",)])
def test_json_without_dry_run_is_refused_not_ignored(executed, spelling):
    res = bootstrap(*spelling)
    assert res.exit_code == 2 and executed == []
    assert "--format json prints the plan, which only --dry-run shows: add --dry-run" in res.stderr
