"""The step machinery: skip what is done, record what ran, redo dependents, never mark a
failed step done."""

import json

import pytest

from orchestrator.bootstrap.ledger import Ledger
from orchestrator.bootstrap.steps import Context, Options, Step, run_steps
from orchestrator.errors import UserError


class Recorder(Step):
    def __init__(self, name, depends=(), fail=False, calls=None):
        self.name, self.title, self.depends, self.fail = name, name, depends, fail
        self.calls = calls if calls is not None else []

    def run(self, ctx):
        self.calls.append(self.name)
        if self.fail:
            raise UserError(f"{self.name} broke", fix="try again")
        return {"made": self.name}


def make_ctx(tmp_path):
    opts = Options(root=tmp_path, cache=tmp_path / "cache")
    return Context(opts, Ledger(tmp_path / "build" / "ledger.json"), {}, log=lambda s: None)


def test_second_run_skips_everything_and_ledger_records_durations(tmp_path):
    calls = []
    steps = [Recorder("a", calls=calls), Recorder("b", ("a",), calls=calls)]
    assert run_steps(steps, make_ctx(tmp_path)) == ["a", "b"]
    assert run_steps(steps, make_ctx(tmp_path)) == []
    assert calls == ["a", "b"]
    data = json.loads((tmp_path / "build" / "ledger.json").read_text())
    assert data["steps"]["b"]["made"] == "b" and data["steps"]["b"]["status"] == "done"
    assert data["steps"]["a"]["duration_s"] >= 0


def test_force_redoes_the_step_and_everything_downstream_only(tmp_path):
    calls = []
    steps = [Recorder("a", calls=calls), Recorder("b", ("a",), calls=calls),
             Recorder("c", ("b",), calls=calls), Recorder("z", calls=calls)]
    run_steps(steps, make_ctx(tmp_path))
    calls.clear()
    assert run_steps(steps, make_ctx(tmp_path), force=("b",)) == ["b", "c"]


def test_failed_step_is_not_marked_done_and_rerun_resumes_there(tmp_path):
    calls = []
    steps = [Recorder("a", calls=calls), Recorder("b", ("a",), fail=True, calls=calls)]
    with pytest.raises(UserError, match="b broke"):
        run_steps(steps, make_ctx(tmp_path))
    assert Ledger(tmp_path / "build" / "ledger.json").get("b") is None
    steps[1].fail = False
    calls.clear()
    assert run_steps(steps, make_ctx(tmp_path)) == ["b"]


def test_unknown_force_name_lists_the_steps(tmp_path):
    with pytest.raises(UserError) as err:
        run_steps([Recorder("a")], make_ctx(tmp_path), force=("nope",))
    assert "--redo one of: a" in err.value.format_message()


def test_torn_ledger_means_nothing_is_done(tmp_path):
    path = tmp_path / "build" / "ledger.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"schema": 1, "steps": {"a": {"status": "do')
    assert Ledger(path).get("a") is None
