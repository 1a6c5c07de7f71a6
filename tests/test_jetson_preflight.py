"""Preflight on a simulated Nano: each refusal stops the run before anything slow and says
what to do; --make-swap and --max-power act only when asked, through sudo -n."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from jetson_board import NANO_MEMINFO, UNREACHABLE, make_board

from orchestrator.bootstrap import gcc, preflight
from orchestrator.cli import main

GIB = 1 << 30


@pytest.fixture
def board(nano):
    return nano


def bootstrap(*args: str):
    return CliRunner().invoke(main, ["bootstrap", "--profile", "jetson-nano", *args])


def nothing_ran(board) -> bool:
    return not board.gcc_lines() and not (board.root / "build/llama.cpp").exists()


def test_too_little_disk_is_refused_with_how_much_and_where(board, monkeypatch):
    monkeypatch.setattr(preflight, "disk_free", lambda path: 3 * GIB)
    res = bootstrap()
    assert res.exit_code == 1
    assert f"only 3.0 GiB free under {board.root}/build" in res.output
    assert "need 8.0 GiB" in res.output and "GCC's build tree 6.0 GiB" in res.output
    assert "fix: free 5.0 GiB on that file system" in res.output
    assert nothing_ran(board)


def test_a_resumed_gcc_build_needs_only_headroom(board, monkeypatch):
    from jetson_board import context

    stamps = gcc.work_dir(context(board)) / "stamps"
    stamps.mkdir(parents=True)
    (stamps / "configured").touch()
    monkeypatch.setattr(preflight, "disk_free", lambda path: 3.5 * GIB)
    out = bootstrap("--dry-run").output
    assert "ok     disk: 3.5 GiB free" in out and "need 3.0 GiB" in out


def test_a_packed_compiler_needs_no_room_for_the_gcc_build(board, monkeypatch, tmp_path):
    monkeypatch.setattr(preflight, "disk_free", lambda path: 3 * GIB)
    res = bootstrap("--dry-run", "--gcc-from", str(tmp_path / "gcc.tar.gz"))
    assert "ok     disk: 3.0 GiB free" in res.output and "configure" not in res.output


def test_short_memory_and_swap_asks_for_make_swap(tmp_path, monkeypatch, download_host):
    board = make_board(tmp_path, monkeypatch, meminfo=NANO_MEMINFO, reachable_url=download_host)
    res = bootstrap()
    assert res.exit_code == 1
    assert "3.9 GiB RAM + 1.9 GiB swap" in res.output and "needs 8.0 GiB of memory + swap" in res.output
    assert "fix: make bootstrap ARGS=--make-swap (adds a 3 GiB swap file /swapfile-edgebench" in res.output
    assert not any("fallocate" in line for line in board.call_lines())
    assert nothing_ran(board)


def test_make_swap_adds_a_swap_file_through_sudo(tmp_path, monkeypatch, download_host):
    board = make_board(tmp_path, monkeypatch, meminfo=NANO_MEMINFO, reachable_url=download_host)
    monkeypatch.setenv("FAKE_GCC_FAIL", "configure")  # stop right after preflight, in the gcc step
    res = bootstrap("--make-swap", "--max-power")
    calls = board.call_lines()
    assert "sudo fallocate -l 3G /swapfile-edgebench" in calls
    assert calls.index("sudo mkswap /swapfile-edgebench") < calls.index("sudo swapon /swapfile-edgebench")
    assert "sudo nvpmodel -m 0" in calls  # MAXN's id, from etc/nvpmodel.conf
    assert "preflight ok     power: switched to power mode MAXN (id 0)" in res.output
    assert "failed in phase 'configured'" in res.output  # preflight passed, the run went on to GCC


def test_sudo_that_wants_a_password_is_refused(board, monkeypatch):
    monkeypatch.setenv("FAKE_SUDO_DENY", "1")
    res = bootstrap()
    assert res.exit_code == 1
    assert "jetson-stats needs root, and sudo wants a password" in res.output
    assert "fix: run `sudo -v`" in res.output
    assert nothing_ran(board)


def test_unreachable_download_is_refused_before_anything_slow(board, monkeypatch):
    monkeypatch.setattr(gcc, "PREREQ_URL", UNREACHABLE)
    res = bootstrap()
    assert res.exit_code == 1
    assert f"{UNREACHABLE}: 127.0.0.1:9 is unreachable" in res.output
    assert "(GCC's prerequisites (gmp, mpfr, mpc, isl; contrib/download_prerequisites), step gcc)" in res.output
    assert "--gcc-from TARBALL" in res.output
    assert nothing_ran(board)


def test_a_download_with_a_fallback_needs_one_of_its_hosts(board, monkeypatch):
    out = bootstrap("--dry-run").output  # GitHub is unreachable here, the package index answers
    assert "ok     network: http://127.0.0.1:" in out and "llama.cpp a33e6a0: git, or else" in out
    monkeypatch.setenv("EDGEBENCH_PYPI_INDEX", UNREACHABLE)
    res = bootstrap()
    assert res.exit_code == 1 and "preflight refused" in res.output
    line = next(x for x in res.output.splitlines() if "llama.cpp a33e6a0: git, or else" in x)
    assert line.count("is unreachable") == 2  # both hosts were tried


def test_not_a_nano(tmp_path, monkeypatch, download_host):
    make_board(tmp_path, monkeypatch, model="NVIDIA Jetson AGX Orin", reachable_url=download_host)
    res = bootstrap()
    assert res.exit_code == 1
    assert "module is 'NVIDIA Jetson AGX Orin', not a Jetson Nano" in res.output
    assert "fix: --profile jetson-orin" in res.output


def test_power_mode_is_recorded(board, monkeypatch):
    monkeypatch.setenv("FAKE_GCC_FAIL", "configure")
    bootstrap()
    import json

    checks = json.loads((board.root / "build/ledger.json").read_text())["steps"]["preflight"]["checks"]
    power = next(c for c in checks if c["check"] == "power")
    assert power["level"] == "warn" and "power mode 5W (id 1)" in power["detail"] and power["fix"] == (
        "--max-power (runs `sudo nvpmodel -m 0`)")
