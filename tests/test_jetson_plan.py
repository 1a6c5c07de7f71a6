"""`edgebench bootstrap --dry-run` on a simulated Jetson Nano (and Orin), and the host profile
left as it was."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from jetson_board import ORIN_MODEL, ORIN_RELEASE, make_board

from orchestrator.bootstrap.profiles import steps_for
from orchestrator.cli import main


@pytest.fixture
def board(nano):
    return nano


def invoke(*args: str):
    return CliRunner().invoke(main, ["bootstrap", *args], catch_exceptions=False)


def test_host_profile_keeps_its_four_steps():
    assert [s.name for s in steps_for("host")] == ["llama-source", "patch", "build", "model"]


def test_nano_plan_is_what_the_study_did(board):
    res = invoke("--dry-run", "--profile", "jetson-nano")
    assert res.exit_code == 0, res.output
    out = res.output
    assert "bootstrap plan for profile jetson-nano" in out
    # GCC 8.5.0 from source into its own prefix, detached and resumable
    assert "gcc-8.5.0.tar.xz" in out and "sha256=" in out
    assert "./contrib/download_prerequisites" in out
    assert "--enable-languages=c,c++ --disable-multilib --enable-checking=release" in out
    assert f"--prefix={board.root}/build/toolchain/gcc-8.5.0" in out
    assert "detached" in out and "gcc.log" in out
    # the Nano patch, then the CUDA build for the probed arch with GCC 8.5 as nvcc's host compiler
    assert "llama.cpp-a33e6a0-jetson-nano.patch" in out
    build = next(line for line in out.splitlines() if "LLAMA_CUBLAS=1" in line)
    assert "CUDA_DOCKER_ARCH=sm_53" in build
    gxx = f"{board.root}/build/toolchain/gcc-8.5.0/bin/g++"
    assert f"-ccbin {gxx}" in build and f"CXX={gxx}" in build
    assert f'PATH="{board.sysroot}/usr/local/cuda/bin:$PATH"' in build  # nvcc on PATH for this command only
    assert "main -m" in out and "-ngl 1" in out  # the smoke test
    assert "sudo -n -H" in out and "jetson-stats==4.3.2" in out and "jtop.service" in out
    assert "[todo] python-env" in out
    # preflight ran (read-only): the fake board answers every question
    assert "ok     l4t: L4T 32.7.1" in out
    assert f"ok     module: {'NVIDIA Jetson Nano Developer Kit'}" in out
    assert "warn   power: power mode 5W (id 1)" in out and "--max-power" in out
    assert "refuse " not in out
    # a dry run changed nothing
    assert not (board.root / "build" / "ledger.json").exists()
    assert not any(line.startswith(("sudo -n nvpmodel -m", "sudo systemctl", "sudo usermod")) for line in
                   board.call_lines())


def test_profile_is_detected_from_the_board(board):
    res = invoke("--dry-run")
    assert "bootstrap plan for profile jetson-nano" in res.output


def test_json_plan_is_data(board):
    res = invoke("--dry-run", "--format", "json", "--profile", "jetson-nano")
    doc = json.loads(res.output)
    assert doc["profile"] == "jetson-nano"
    names = [s["step"] for s in doc["steps"]]
    assert names == ["python-env", "jetson-stats", "gcc", "llama-source", "patch", "cuda-probe", "build", "model",
                     "smoke"]
    build = next(s for s in doc["steps"] if s["step"] == "build")
    make = build["commands"][-1]
    assert "CUDA_DOCKER_ARCH=sm_53" in make["argv"] and "LLAMA_CUBLAS=1" in make["argv"]
    assert make["env"]["PATH"].endswith("/usr/local/cuda/bin:$PATH")
    assert {c["check"] for c in doc["preflight"]} >= {"l4t", "module", "disk", "memory", "power", "sudo", "network"}
    assert next(s for s in doc["steps"] if s["step"] == "jetson-stats")["needs_sudo"] is True


def test_the_arch_comes_from_the_probe_not_a_guess(board, monkeypatch):
    monkeypatch.setenv("FAKE_CC", "6.2")
    out = invoke("--dry-run", "--profile", "jetson-nano").output
    assert "CUDA_DOCKER_ARCH=sm_62" in out and "CUDA_DOCKER_ARCH=sm_53" not in out


def test_without_cuda_the_plan_says_the_probe_will_run(board, monkeypatch):
    (board.sysroot / "usr/local/cuda/bin/nvcc").unlink()
    monkeypatch.setenv("PATH", str(board.bin) + ":/usr/bin:/bin")  # no nvcc anywhere
    out = invoke("--dry-run", "--profile", "jetson-nano").output
    assert "CUDA_DOCKER_ARCH=sm_<probed>" in out
    assert "the probe cannot run here" in out


def test_orin_plan_skips_gcc_and_uses_the_system_compiler(tmp_path, monkeypatch, download_host):
    make_board(tmp_path, monkeypatch, model=ORIN_MODEL, release=ORIN_RELEASE, reachable_url=download_host)
    monkeypatch.setenv("FAKE_CC", "8.7")
    res = invoke("--dry-run", "--format", "json")
    doc = json.loads(res.output)
    assert doc["profile"] == "jetson-orin"
    assert "gcc" not in [s["step"] for s in doc["steps"]]
    make = next(s for s in doc["steps"] if s["step"] == "build")["commands"][-1]["argv"]
    assert "CUDA_DOCKER_ARCH=sm_87" in make
    assert not any(a.startswith(("CC=", "CXX=")) or "-ccbin" in a for a in make)
    assert all(c["level"] != "refuse" for c in doc["preflight"]), doc["preflight"]


def test_host_dry_run_has_no_board_steps_and_no_preflight(isolated_root, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_SYSROOT", str(isolated_root / "no-board"))
    res = invoke("--dry-run", "--profile", "host", "--llama-source", "pypi")
    assert res.exit_code == 0
    assert "preflight" not in res.output and "LLAMA_CUBLAS" not in res.output
    assert [line.split("]")[1].split(":")[0].strip() for line in res.output.splitlines() if "] " in line] == [
        "llama-source", "patch", "build", "model"]


def test_every_install_into_the_nanos_environment_is_held_to_the_proven_versions(board):
    from orchestrator.nanocheck import constraints

    doc = json.loads(invoke("--dry-run", "--format", "json", "--profile", "jetson-nano").output)
    installs = [c["argv"] for s in doc["steps"] for c in s["commands"]
                if c["argv"][1:4] == ["-m", "pip", "install"] and not c["argv"][0].startswith("sudo")]
    assert len(installs) == 2  # python-env's report extra, and jtop's client in the project's environment
    assert all(argv[-2:] == ["-c", str(constraints.path())] for argv in installs)
    system = [c["argv"] for s in doc["steps"] for c in s["commands"] if "-H" in c["argv"] and "pip" in c["argv"]]
    assert system and not any("-c" in argv for argv in system)  # the board's Python 3.6: cp311 pins do not apply
