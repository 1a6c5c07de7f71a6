"""GCC 8.5.0 on a simulated Nano: a failure in the detached build and a rerun that resumes at
the failed phase; Ctrl-C that leaves the build running and a rerun that re-attaches; a packed
compiler installed on a second board without building."""

from __future__ import annotations

import json

import pytest
from jetson_board import context, make_board

from orchestrator.bootstrap import gcc
from orchestrator.bootstrap.steps import Step, run_steps
from orchestrator.errors import UserError


class Earlier(Step):
    """Stands for the steps before gcc: done once, skipped on the rerun."""

    name = "earlier"
    title = "a step before gcc"
    runs = 0

    def run(self, ctx):
        Earlier.runs += 1
        return {}


@pytest.fixture
def board(nano):
    Earlier.runs = 0
    return nano


def test_failed_build_resumes_at_the_failed_phase(board, monkeypatch):
    monkeypatch.setenv("FAKE_GCC_FAIL", "build")
    lines: list[str] = []
    with pytest.raises(UserError) as err:
        run_steps([Earlier(), gcc.Gcc()], context(board, lines=lines))
    msg = err.value.format_message()
    assert "failed in phase 'built'" in msg and "cc1plus: out of memory (fake)" in msg
    assert "resumes at 'built'" in msg and "prerequisites, configured" in msg
    assert board.count("configure") == 1 and board.count("make all") == 1 and board.count("make install") == 0
    log = (board.root / "build/logs/gcc.log").read_text()
    assert "== " in log and "configured: done" in log

    monkeypatch.delenv("FAKE_GCC_FAIL")
    lines.clear()
    ran = run_steps([Earlier(), gcc.Gcc()], context(board, lines=lines))
    assert ran == ["gcc"] and Earlier.runs == 1  # the finished step is skipped
    assert any("resuming at 'built'" in line for line in lines)
    # the finished phases were not run again; the failed one was
    assert board.count("download_prerequisites") == 1 and board.count("configure") == 1
    assert board.count("make all") == 2 and board.count("make install") == 1
    configure = next(line for line in board.gcc_lines() if line.startswith("configure"))
    assert f"--prefix={board.root}/build/toolchain/gcc-8.5.0" in configure
    assert "--enable-languages=c,c++ --disable-multilib --enable-checking=release" in configure
    entry = json.loads((board.root / "build/ledger.json").read_text())["steps"]["gcc"]
    assert entry["method"] == "source" and "8.5.0" in entry["version"]
    assert (board.root / "build/toolchain/gcc-8.5.0/bin/g++").is_file()
    # and a third run has nothing to do
    assert run_steps([Earlier(), gcc.Gcc()], context(board)) == []


def test_make_jobs_are_sized_to_memory():
    gib = 1 << 30
    assert gcc.jobs({"cpu_count": 4, "mem_total_bytes": 4 * gib}) == 2  # a 4 GB Nano
    assert gcc.jobs({"cpu_count": 4, "mem_total_bytes": 32 * gib}) == 4
    assert gcc.jobs({"cpu_count": 4, "mem_total_bytes": 1 * gib}) == 1


def test_ctrl_c_leaves_the_build_running_and_a_rerun_reattaches(board, monkeypatch):
    monkeypatch.setenv("FAKE_GCC_SLEEP", "1")
    real_sleep = gcc._sleep

    def ctrl_c(seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(gcc, "_sleep", ctrl_c)
    with pytest.raises(UserError) as err:
        run_steps([gcc.Gcc()], context(board))
    assert "goes on in the background" in err.value.format_message()
    monkeypatch.setattr(gcc, "_sleep", real_sleep)
    lines: list[str] = []
    assert run_steps([gcc.Gcc()], context(board, lines=lines)) == ["gcc"]
    assert any("already running" in line and "attaching" in line for line in lines)
    assert board.count("configure") == 1 and board.count("make all") == 1 and board.count("make install") == 1


def test_pack_then_install_on_another_board_skips_the_build(board, tmp_path, monkeypatch):
    first = context(board)
    run_steps([gcc.Gcc()], first)
    packed = gcc.pack(first)
    assert packed.name == f"gcc-8.5.0-{first.platform['machine']}.tar.gz"
    assert packed.with_name(packed.name + ".sha256").is_file()
    built = board.count("configure")

    second = make_board(tmp_path / "second", monkeypatch)
    lines: list[str] = []
    ctx = context(second, lines=lines, gcc_from=packed)
    assert [c.argv[0] for c in gcc.Gcc().commands(ctx)][0] == "extract"  # the plan has no configure/make
    assert run_steps([gcc.Gcc()], ctx) == ["gcc"]
    assert second.count("configure") == 0 and board.count("configure") == built
    entry = ctx.ledger.get("gcc")
    assert entry["method"] == "tarball" and "8.5.0" in entry["version"]
    assert gcc.version_line(second.root / "build/toolchain/gcc-8.5.0/bin/g++") == "g++ (GCC) 8.5.0"


def test_a_tarball_for_another_machine_is_refused(board, tmp_path):
    ctx = context(board)
    run_steps([gcc.Gcc()], ctx)
    packed = gcc.pack(ctx)
    other = context(board, gcc_from=packed)
    other.platform["machine"] = "riscv64"
    with pytest.raises(UserError, match="this board needs GCC 8.5.0 for riscv64"):
        gcc.install_packed(other, packed)


def test_cli_pack_gcc_then_gcc_from_on_a_second_board(board, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from orchestrator.cli import main

    res = CliRunner().invoke(main, ["bootstrap", "--profile", "jetson-nano", "--pack-gcc", "--skip-preflight"])
    assert res.exit_code == 0, res.output
    packed = board.root / "build/dist" / gcc.packed_name()
    assert f"packed GCC 8.5.0 into {packed}" in res.output
    assert not (board.root / "build/llama.cpp").exists()  # --pack-gcc stops after the compiler
    assert not (gcc.work_dir(context(board)) / "obj").exists()  # the build tree went once installed

    second = make_board(tmp_path / "second", monkeypatch)
    res = CliRunner().invoke(main, ["bootstrap", "--profile", "jetson-nano", "--dry-run", "--gcc-from", str(packed)])
    plan = res.output.split("[todo] gcc")[1].split("[todo] llama-source")[0]
    assert f"extract {packed}" in plan and "configure" not in plan and "make -j" not in plan
    res = CliRunner().invoke(main, ["bootstrap", "--profile", "jetson-nano", "--pack-gcc", "--skip-preflight",
                                    "--gcc-from", str(packed)])
    assert res.exit_code == 0, res.output
    assert second.count("configure") == 0
