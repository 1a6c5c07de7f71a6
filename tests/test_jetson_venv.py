"""tools/ensure-venv.sh on a board whose only Python is 3.6: it gets a standalone CPython from
uv (never touching the system Python); it adds the twin and report extras (report only where its
wheels install) and, on a Nano, holds pip to the versions nano-check proved there."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from jetson_board import write_exe

REPO = Path(__file__).resolve().parents[1]

OLD_PYTHON = """#!/bin/sh
# a Python 3.6, as JetPack 4 has
case "$*" in
  --version) echo "Python 3.6.9" ;;
  *) exit 1 ;;
esac
"""

FAKE_UV = """#!/bin/sh
echo "uv $*" >> "$FAKE_CALLS"
case "$1 $2" in
  "python install") exit 0 ;;
  "python find") echo "$FAKE_STANDALONE" ;;
esac
"""

# The standalone CPython uv installs: `-m venv DIR` makes DIR/bin/python, which records pip calls.
STANDALONE = """#!/bin/sh
echo "standalone $*" >> "$FAKE_CALLS"
if [ "$1 $2" = "-m venv" ]; then
  mkdir -p "$3/bin"
  # pip fails with FAKE_REPORT_RC when the report extra is asked for (no wheels for it here)
  printf '#!/bin/sh\\necho "venv-python $*" >> "$FAKE_CALLS"\\n' > "$3/bin/python"
  printf 'case "$*" in *report*) exit $FAKE_REPORT_RC ;; esac\\n' >> "$3/bin/python"
  chmod +x "$3/bin/python"
elif [ "$1" = "--version" ]; then echo "Python 3.11.9"; fi
"""


def ensure_venv(tmp_path, *args, model: str | None = None, report_rc: int = 0):
    """Run a copy of the script on a simulated board with Python 3.6 only; returns (result, tree, calls)."""
    tree = tmp_path / "checkout"
    (tree / "tools").mkdir(parents=True)
    shutil.copy(REPO / "tools/ensure-venv.sh", tree / "tools/ensure-venv.sh")
    for f in ("setup.cfg", "pyproject.toml"):
        (tree / f).write_text("")
    fbin, calls = tmp_path / "bin", tmp_path / "calls.log"
    for name in ("python3", "python3.10", "python3.11", "python3.12", "python3.13"):
        write_exe(fbin / name, OLD_PYTHON)
    write_exe(fbin / "uv", FAKE_UV)
    standalone = write_exe(tmp_path / "uv-python/bin/python3.11", STANDALONE)
    sysroot = tmp_path / "sysroot"
    (sysroot / "etc").mkdir(parents=True)
    (sysroot / "etc/nv_tegra_release").write_text("# R32 (release), REVISION: 7.1\n")
    if model:
        (sysroot / "proc/device-tree").mkdir(parents=True)
        (sysroot / "proc/device-tree/model").write_bytes(model.encode() + b"\0")
    env = {**os.environ, "PATH": f"{fbin}:/usr/bin:/bin", "FAKE_CALLS": str(calls), "FAKE_REPORT_RC": str(report_rc),
           "FAKE_STANDALONE": str(standalone), "EDGEBENCH_SYSROOT": str(sysroot), "HOME": str(tmp_path)}
    env.pop("EDGEBENCH_PYTHON", None)
    res = subprocess.run(["bash", str(tree / "tools/ensure-venv.sh"), *args], env=env, capture_output=True,
                         text=True, timeout=60)
    return res, tree, calls.read_text().splitlines()


def test_no_modern_python_means_uv_and_a_standalone_cpython(tmp_path):
    res, tree, lines = ensure_venv(tmp_path, "dev")
    assert res.returncode == 0, res.stderr
    assert "installing a standalone CPython 3.11" in res.stderr
    assert lines[:2] == ["uv python install 3.11", "uv python find 3.11"]
    assert "standalone -m venv .venv" in lines
    assert "venv-python -m pip install --quiet --disable-pip-version-check -e .[dev]" in lines
    assert (tree / ".venv/.installed-dev").is_file()


PIP = "venv-python -m pip install --quiet --disable-pip-version-check"


def test_a_plain_venv_brings_the_twin_and_the_report_extras(tmp_path):
    res, tree, lines = ensure_venv(tmp_path)
    assert res.returncode == 0, res.stderr
    assert "No such file" not in res.stderr  # no device-tree model file: not a Nano, and quietly so
    assert f"{PIP} -e .[twin,report]" in lines
    assert (tree / ".venv/.installed-twin,report").is_file()


def test_where_the_report_wheels_do_not_install_the_venv_is_made_without_them(tmp_path):
    res, tree, lines = ensure_venv(tmp_path, report_rc=1)
    assert res.returncode == 0, res.stderr
    assert lines[-2:] == [f"{PIP} -e .[twin,report]", f"{PIP} -e .[twin]"]
    assert "warning: the report extra (polars, plotnine) does not install here" in res.stderr
    # asked by name (make report), the same failure is an error
    res, tree, lines = ensure_venv(tmp_path / "again", "report", report_rc=1)
    assert res.returncode == 1 and lines[-1] == f"{PIP} -e .[report,twin]"


def test_on_a_nano_every_install_is_held_to_the_proven_versions(tmp_path):
    res, tree, lines = ensure_venv(tmp_path, model="NVIDIA Jetson Nano Developer Kit")
    assert res.returncode == 0, res.stderr
    assert f"{PIP} -c orchestrator/data/constraints/jetson-nano.txt -e .[twin,report]" in lines
    assert (REPO / "orchestrator/data/constraints/jetson-nano.txt").is_file()
