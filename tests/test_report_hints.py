"""Every command an absent figure's sentence tells the user to run exists, as typed."""

from __future__ import annotations

import re

from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.experiments import plans
from orchestrator.report import figures

HINTS = [figures.GET_GPU, figures.GET_GRANULAR, *figures.EXPERIMENT_HINT.values()]
COMMAND = re.compile(r"edgebench ((?:[a-z-]+)(?: [a-z-]+)?(?: --?[a-z-]+(?: [\w.]+)?)*)")


def test_every_hint_names_a_command_that_exists():
    named = [m for h in HINTS for m in COMMAND.findall(h)]
    assert len(named) >= 5
    for cmd in named:
        words = cmd.split()
        if words[0] == "experiment" and len(words) > 1 and not words[1].startswith("-"):
            assert words[1] == "all" or plans.find(words[1]).is_file(), cmd
            words = words[:1]
        opts = [w for w in words[1:] if w.startswith("--")]
        res = CliRunner().invoke(main, [words[0], "--help"])
        assert res.exit_code == 0, cmd
        for opt in opts:
            assert opt in res.output, f"{cmd}: {opt} is not an option of edgebench {words[0]}"
