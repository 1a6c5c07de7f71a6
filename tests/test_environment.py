"""Every EDGEBENCH_* variable the package and its tools read is documented in
docs/environment.md (generated from orchestrator/envvars.py), and doctor shows those set."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from orchestrator import envvars
from orchestrator.cli import main

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "environment.md"
NAME = re.compile(r"EDGEBENCH_[A-Z0-9_]*[A-Z0-9]")


def read_by(*folders: str, root: Path = REPO) -> dict[str, str]:
    """Each variable named in the files under `folders`, with one file that names it."""
    found: dict[str, str] = {}
    for folder in folders:
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and path.suffix in (".py", ".sh", "") and "__pycache__" not in path.parts \
                    and path != Path(__file__).resolve():
                for name in NAME.findall(path.read_text(errors="replace")):
                    found.setdefault(name, str(path.relative_to(root)))
    return found


def undocumented(found: dict[str, str]) -> dict[str, str]:
    documented = set(NAME.findall(DOC.read_text()))
    return {name: where for name, where in found.items() if name not in documented}


def test_the_documentation_is_the_registry():
    assert DOC.read_text() == envvars.markdown(), "regenerate: python -c 'from orchestrator import envvars; " \
        "open(\"docs/environment.md\", \"w\").write(envvars.markdown())'"


def test_every_variable_the_package_and_its_tools_read_is_documented():
    assert not undocumented(read_by("orchestrator", "tools")), "add them to orchestrator/envvars.py"


def test_the_variables_the_tests_read_are_documented_too():
    assert not undocumented(read_by("tests"))


def test_the_check_catches_a_new_variable(tmp_path):
    (tmp_path / "orchestrator").mkdir()
    (tmp_path / "orchestrator" / "new.py").write_text('os.environ.get("EDGEBENCH_" + "NEW_KNOB")\n'
                                                      'x = os.environ["EDGEBENCH_NEW_KNOB"]\n')
    assert undocumented(read_by("orchestrator", root=tmp_path)) == {"EDGEBENCH_NEW_KNOB": "orchestrator/new.py"}


def test_doctor_shows_the_variables_set_and_flags_a_misspelt_one(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_ROOT", str(tmp_path))
    monkeypatch.setenv("EDGEBENCH_CONNECT_TIMEOUT", "7")
    monkeypatch.setenv("EDGEBENCH_MISSPELT", "1")
    out = CliRunner().invoke(main, ["doctor"]).output
    assert "environment   EDGEBENCH_CONNECT_TIMEOUT=7\n" in out
    assert f"              EDGEBENCH_ROOT={tmp_path}\n" in out
    assert "EDGEBENCH_MISSPELT=1  (edgebench reads no such variable: misspelt?)" in out
    doc = json.loads(CliRunner().invoke(main, ["doctor", "--format", "json"]).output)
    assert doc["environment"]["EDGEBENCH_CONNECT_TIMEOUT"] == "7"


def test_doctor_json_is_format_json_and_the_old_flag_warns(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_ROOT", str(tmp_path))
    new = CliRunner().invoke(main, ["doctor", "--format", "json"])
    old = CliRunner().invoke(main, ["doctor", "--json"])
    assert json.loads(new.stdout)["root"] == str(tmp_path) == json.loads(old.stdout)["root"]
    assert "warning: --json is now --format json" in old.stderr and "warning" not in new.stderr
    assert "--json" not in CliRunner().invoke(main, ["doctor", "--help"]).output
    clash = CliRunner().invoke(main, ["doctor", "--json", "--format", "table"])
    assert clash.exit_code == 2 and "--json and --format table ask for two formats" in clash.output
