"""A small tmpfs for the full-disk tests (issue 18): mounting one needs root. Elsewhere those tests
skip and say why; CI (.ci/run, as root) sets EDGEBENCH_TEST_NEED_TMPFS=1, and there a tmpfs that
cannot be mounted fails the test instead, so the full-disk path never goes unrun unseen."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

NEED = "EDGEBENCH_TEST_NEED_TMPFS"


def _cannot(reason: str) -> None:
    if os.environ.get(NEED) == "1":
        pytest.fail(f"{reason}, and {NEED}=1 says this run must test a full disk")
    pytest.skip(reason)


def mount(path: Path, size: str) -> Path:
    """A fresh tmpfs of `size` (mount's syntax: 600k, 2m) at `path`; unmount() it after."""
    if os.geteuid() != 0:
        _cannot("mounting a small tmpfs needs root (CI runs as root)")
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                         text=True)
    if res.returncode != 0:
        _cannot(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    return path


def unmount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], check=False)
