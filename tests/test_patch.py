"""The Jetson Nano Makefile patch, against the real a33e6a0 Makefile."""

import shutil
import subprocess

import pytest

from orchestrator.bootstrap.patch import apply_patch, nano_patch, patch_state
from orchestrator.errors import UserError


@pytest.fixture
def pristine_tree(llama_bin_dir, tmp_path):
    """A folder with a33e6a0's Makefile as it was before our patch."""
    shutil.copy(llama_bin_dir / "Makefile", tmp_path / "Makefile")
    if patch_state(tmp_path) == "applied":
        subprocess.run(["patch", "-p1", "-R", "--batch", "--silent", "-i", str(nano_patch())], cwd=tmp_path, check=True)
    return tmp_path


def test_patch_is_a_unified_diff_of_the_makefile():
    text = nano_patch().read_text()
    assert text.startswith("--- a/Makefile\n+++ b/Makefile\n")
    assert text.count("+MK_NVCCFLAGS  += -maxrregcount=80") == 2
    assert "-\tMK_CXXFLAGS += -mcpu=native" in text


def test_applies_once_then_is_a_no_op(pristine_tree):
    before = (pristine_tree / "Makefile").read_text()
    assert "MK_NVCCFLAGS  += -O3" in before
    assert patch_state(pristine_tree) == "clean"
    assert apply_patch(pristine_tree) is True
    after = (pristine_tree / "Makefile").read_text()
    assert "MK_NVCCFLAGS  += -O3" not in after
    assert after.count("MK_NVCCFLAGS  += -maxrregcount=80") == 2
    # aarch64 keeps -mcpu=native for C, drops it for C++
    assert "\tMK_CFLAGS   += -mcpu=native" in after and "\tMK_CXXFLAGS += -mcpu=native" not in after
    assert apply_patch(pristine_tree) is False
    assert (pristine_tree / "Makefile").read_text() == after


def test_a_tree_that_is_neither_is_a_clear_error(pristine_tree):
    mk = pristine_tree / "Makefile"
    mk.write_text(mk.read_text().replace("MK_NVCCFLAGS  += -O3", "MK_NVCCFLAGS  += -O2"))
    assert patch_state(pristine_tree) == "conflict"
    with pytest.raises(UserError) as err:
        apply_patch(pristine_tree)
    msg = err.value.format_message()
    assert "neither applies" in msg and "fix: edgebench bootstrap --redo llama-source" in msg
