"""A command that needs an extra that is not installed says which one and the command that
installs it, exits 1, and shows no traceback. Run in a Python that sees edgebench's core
dependencies only (the distributions setup.cfg requires, and theirs), as a plain install has."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from orchestrator import extras

CHECKOUT = Path(__file__).resolve().parent.parent


def _core_distributions() -> set[str]:
    """edgebench's install_requires and, recursively, what they require (no extras)."""
    def name(req: str) -> str:
        return re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0].lower().replace("_", "-")

    todo = [name(r) for r in metadata.requires("edgebench") or [] if "extra ==" not in r]
    seen: set[str] = set()
    while todo:
        dist = todo.pop()
        if dist in seen:
            continue
        seen.add(dist)
        try:
            todo += [name(r) for r in metadata.requires(dist) or [] if "extra ==" not in r]
        except metadata.PackageNotFoundError:
            pass
    return seen


@pytest.fixture(scope="module")
def core_only(tmp_path_factory) -> Path:
    """A folder holding links to the core distributions' top-level modules, nothing else."""
    site = tmp_path_factory.mktemp("core-site")
    core = _core_distributions()
    for top, dists in metadata.packages_distributions().items():
        if not {d.lower().replace("_", "-") for d in dists} & core:
            continue
        for found in Path(metadata.distribution(dists[0]).locate_file("")).glob(f"{top}*"):
            if found.name == top or found.name.startswith((f"{top}.", f"{top}-")) and found.suffix in (".py", ".so"):
                link = site / found.name
                if not link.exists():
                    link.symlink_to(found)
    return site


def edgebench(core_only: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    # -S: no site-packages at all; the core modules and the checkout come from PYTHONPATH only
    env = {**os.environ, "PYTHONPATH": f"{core_only}{os.pathsep}{CHECKOUT}", "EDGEBENCH_ROOT": str(cwd)}
    code = "import sys; from orchestrator.cli import main; sys.argv[0] = 'edgebench'; main()"
    return subprocess.run([sys.executable, "-S", "-c", code, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_the_core_only_python_really_lacks_the_extras(core_only, tmp_path):
    res = edgebench(core_only, tmp_path, "--help")
    assert res.returncode == 0, res.stderr
    probe = subprocess.run([sys.executable, "-S", "-c", "import importlib.util as u; print([m for m in "
                            "('polars', 'plotnine', 'gguf', 'numpy', 'click', 'jinja2') if u.find_spec(m)])"],
                           env={**os.environ, "PYTHONPATH": str(core_only)}, capture_output=True, text=True)
    assert probe.stdout.strip() == "['click', 'jinja2']"


@pytest.mark.parametrize("command", [("report",), ("bench",)])
def test_a_command_without_its_extra_names_it_and_the_install_command(core_only, tmp_path, command):
    res = edgebench(core_only, tmp_path, *command)
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    first, fix = res.stderr.strip().splitlines()[-2:]
    assert first.startswith(f"error: edgebench {command[0]} needs the `report` extra (polars, plotnine")
    # from this checkout: the editable install of its report extra, into the Python that runs it
    assert fix == f"fix: {sys.executable} -m pip install -e '{CHECKOUT}[report]'"


def test_the_help_of_a_command_works_without_its_extra(core_only, tmp_path):
    res = edgebench(core_only, tmp_path, "report", "--help")
    assert res.returncode == 0 and "RUN_OR_EXPERIMENT_DIR" in res.stdout


def test_the_twin_without_its_extra_is_one_message(core_only, tmp_path):
    code = ("from pathlib import Path; from orchestrator.bootstrap import twin\n"
            "try:\n twin.synthesize(twin.TINY, Path('v'), Path('q'), Path('o'))\n"
            "except Exception as e:\n print(e.format_message())")
    res = subprocess.run([sys.executable, "-S", "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": f"{core_only}{os.pathsep}{CHECKOUT}"})
    assert res.stdout.startswith("synthesizing the timing twin needs the `twin` extra (gguf, numpy not installed)")
    assert f"-m pip install -e '{CHECKOUT}[twin]'" in res.stdout
    assert not (tmp_path / "o").exists()


def test_in_the_checkout_with_its_venv_the_fix_is_make_report(monkeypatch):
    monkeypatch.chdir(CHECKOUT)
    monkeypatch.setattr(sys, "prefix", str(CHECKOUT / ".venv"))
    assert extras.install_command("report") == "make report (or .venv/bin/pip install -e '.[report]')"
    assert extras.install_command("twin") == ".venv/bin/pip install -e '.[twin]'"


def test_the_report_hint_names_edgebench_as_it_can_be_typed_here(tmp_path, monkeypatch):
    bindir = tmp_path / ".venv" / "bin"
    bindir.mkdir(parents=True)
    script = bindir / "edgebench"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(bindir / "python"))
    monkeypatch.setattr(sys, "argv", [str(script)])
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.chdir(tmp_path)
    assert extras.self_command() == ".venv/bin/edgebench"  # after `make run`: not on PATH
    monkeypatch.chdir("/")
    assert extras.self_command() == str(script)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    assert extras.self_command() == "edgebench"  # an activated venv, or a pip install --user
