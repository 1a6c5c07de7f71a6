"""jetson-stats, the CUDA probe and the GPU smoke test on a simulated Nano."""

from __future__ import annotations

import pytest
from jetson_board import context, write_exe

from orchestrator.bootstrap import cuda, jetson_stats
from orchestrator.bootstrap.steps import run_steps
from orchestrator.errors import UserError


@pytest.fixture
def board(nano):
    return nano


def test_jetson_stats_service_group_and_env_at_one_version(board):
    lines: list[str] = []
    ctx = context(board, lines=lines)
    assert run_steps([jetson_stats.JetsonStats()], ctx) == ["jetson-stats"]
    calls = board.call_lines()
    assert f"sudo {board.sysroot}/usr/bin/python3 -m pip install jetson-stats==4.3.2" in calls
    assert "systemctl enable jtop.service" in calls and "systemctl is-active jtop.service" in calls
    assert any(c.startswith("usermod -aG jtop ") for c in calls)
    # the project's environment (fake), held to the versions nano-check proved on the Nano's CPU
    from orchestrator.nanocheck import constraints

    assert f"python -m pip install jetson-stats==4.3.2 -c {constraints.path()}" in calls
    assert not any("apt-get" in c for c in calls)  # the system Python had pip
    entry = ctx.ledger.get("jetson-stats")
    assert entry["service_version"] == entry["env_version"] == "4.3.2"
    assert entry["relogin_needed"] is True and any("log out and back in" in line for line in lines)


def test_a_system_python_without_pip_gets_it_from_apt(board, monkeypatch):
    monkeypatch.setenv("FAKE_NO_PIP", "1")
    run_steps([jetson_stats.JetsonStats()], context(board))
    calls = board.call_lines()
    assert calls.index("sudo apt-get install -y python3-pip") < calls.index(
        f"sudo {board.sysroot}/usr/bin/python3 -m pip install jetson-stats==4.3.2")


def test_a_version_mismatch_is_refused_with_the_clients_words():
    with pytest.raises(UserError) as err:
        jetson_stats.check_versions("4.3.2", "4.2.12")
    msg = err.value.format_message()
    assert "Mismatch version jtop service" in msg and "jetson-stats==4.3.2" in msg
    jetson_stats.check_versions("4.3.2", "4.3.0")  # major.minor is what the client compares


def test_an_inactive_service_is_refused(board, monkeypatch):
    monkeypatch.setenv("FAKE_JTOP_STATE", "failed")
    with pytest.raises(UserError, match="jtop.service is not active"):
        run_steps([jetson_stats.JetsonStats()], context(board))


def test_cuda_probe_records_the_compute_capability(board):
    ctx = context(board)
    assert run_steps([cuda.CudaProbe()], ctx) == ["cuda-probe"]
    entry = ctx.ledger.get("cuda-probe")
    assert entry["compute_capability"] == "5.3" and entry["arch"] == "53" and entry["nvcc_version"] == "10.2"
    assert (board.root / "build/cuda-probe/cc-probe.cu").read_text().count("cudaGetDeviceProperties") >= 1
    mv, env = cuda.build_vars(ctx)
    assert mv["CUDA_DOCKER_ARCH"] == "sm_53" and mv["LLAMA_CUBLAS"] == "1"
    assert mv["LLAMA_CUDA_NVCC"].endswith(f"-ccbin {board.root}/build/toolchain/gcc-8.5.0/bin/g++")
    assert dict(env)["PATH"] == f"{board.sysroot}/usr/local/cuda/bin:$PATH"


def test_no_kernel_image_becomes_a_message_about_the_arch(board):
    ctx = context(board)
    ctx.ledger.record("cuda-probe", {"status": "done", "arch": "62", "compute_capability": "6.2"})
    ctx.ledger.record("model", {"status": "done", "path": str(board.root / "m.gguf")})
    write_exe(board.root / "build/llama.cpp/main",
         "#!/bin/sh\necho 'CUDA error 209 at ggml-cuda.cu:9130: no kernel image is available for execution "
         "on the device' >&2\nexit 1\n")
    with pytest.raises(UserError) as err:
        run_steps([cuda.Smoke()], ctx)
    msg = err.value.format_message()
    assert "built for sm_62" in msg and "5.3 (sm_53)" in msg and "--redo cuda-probe" in msg


def test_smoke_passes_with_gpu_offload(board):
    ctx = context(board)
    ctx.ledger.record("model", {"status": "done", "path": str(board.root / "m.gguf")})
    write_exe(board.root / "build/llama.cpp/main",
         "#!/bin/sh\necho 'llm_load_tensors: offloaded 1/23 layers to GPU' >&2\necho Hello world\n")
    run_steps([cuda.Smoke()], ctx)
    assert ctx.ledger.get("smoke")["offloaded"] == "offloaded 1/23 layers to GPU"


def test_doctor_on_the_board_shows_the_probed_arch_gcc_and_jtop(board):
    import json

    from click.testing import CliRunner

    from orchestrator.commands.doctor import doctor

    ctx = context(board)
    run_steps([jetson_stats.JetsonStats(), cuda.CudaProbe()], ctx)
    ctx.ledger.record("gcc", {"status": "done", "version": "8.5.0", "method": "tarball",
                              "prefix": str(board.root / "build/toolchain/gcc-8.5.0")})
    res = CliRunner().invoke(doctor, [])
    assert res.exit_code == 1, res.output  # llama.cpp and the model are not built on this board yet
    assert "llama.cpp main not built: make bootstrap" in res.output
    assert "'arch': '53'" in res.output and "'version': '8.5.0'" in res.output
    assert "log out and back in" in res.output
    data = json.loads(CliRunner().invoke(doctor, ["--format", "json"]).output)
    assert data["profile"] == "jetson-nano" and data["cuda"]["compute_capability"] == "5.3"
    assert data["jetson_stats"]["service_version"] == "4.3.2"
