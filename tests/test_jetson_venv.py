"""tools/ensure-venv.sh on a board whose only Python is 3.6: it gets a standalone CPython from
uv (never touching the system Python) and, on a Jetson, installs the report extra."""

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

# The standalone CPython uv installs: `-m venv DIR` makes DIR/bin/python, which records pip.
STANDALONE = """#!/bin/sh
echo "standalone $*" >> "$FAKE_CALLS"
if [ "$1 $2" = "-m venv" ]; then
  mkdir -p "$3/bin"
  printf '#!/bin/sh\\necho "venv-python $*" >> "$FAKE_CALLS"\\n' > "$3/bin/python"
  chmod +x "$3/bin/python"
elif [ "$1" = "--version" ]; then echo "Python 3.11.9"; fi
"""


def test_no_modern_python_means_uv_and_a_standalone_cpython(tmp_path):
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
    env = {**os.environ, "PATH": f"{fbin}:/usr/bin:/bin", "FAKE_CALLS": str(calls),
           "FAKE_STANDALONE": str(standalone), "EDGEBENCH_SYSROOT": str(sysroot), "HOME": str(tmp_path)}
    env.pop("EDGEBENCH_PYTHON", None)
    res = subprocess.run(["bash", str(tree / "tools/ensure-venv.sh"), "dev"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "installing a standalone CPython 3.11" in res.stderr
    lines = calls.read_text().splitlines()
    assert lines[:2] == ["uv python install 3.11", "uv python find 3.11"]
    assert "standalone -m venv .venv" in lines
    assert "venv-python -m pip install --quiet --disable-pip-version-check -e .[dev,report]" in lines
    assert (tree / ".venv/.installed-dev,report").is_file()
