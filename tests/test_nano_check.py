"""`edgebench nano-check`: the Nano's build proven on this host. The slow test runs the real
check (CUDA 11.8, the aarch64 cross compiler, qemu, Debian's arm64 Python) and asserts every
acceptance figure; the fast ones pin the readers to output CUDA 11.8 and the tools really print."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from orchestrator.errors import UserError
from orchestrator.nanocheck import aarch64, common, constraints, cuda, pyimports, report

# `cuobjdump -res-usage` and `cuobjdump -ptx` of CUDA 11.8 on a33e6a0's ggml-cuda.o, cut down.
RES_USAGE = """
Fatbin elf code:
================
arch = sm_53
code version = [1,7]
host = linux
compile_size = 64bit

Resource usage:
 Common:
  GLOBAL:23377
 Function _Z12rms_norm_f32ILi1024EEvPKfPfif:
  REG:27 STACK:0 SHARED:128 LOCAL:0 CONSTANT[0]:344 CONSTANT[2]:4 TEXTURE:0 SURFACE:0 SAMPLER:0
 Function _Z12mul_mat_q4_1ILb0EEvPKvS1_Pfiiiii:
  REG:13 STACK:40 SHARED:0 LOCAL:0 CONSTANT[0]:364 TEXTURE:0 SURFACE:0 SAMPLER:0
 Function _Z14mul_mat_vec_q6:
  REG:241 STACK:0 SHARED:0 LOCAL:0 CONSTANT[0]:364 TEXTURE:0 SURFACE:0 SAMPLER:0
"""
PTX = """
.visible .entry _Z12rms_norm_f32ILi1024EEvPKfPfif(
.param .u64 _Z12rms_norm_f32ILi1024EEvPKfPfif_param_0,
.param .u32 _Z12rms_norm_f32ILi1024EEvPKfPfif_param_3
)
{
.reg .b32 %r<4>;
ret;
}
.entry _Z12mul_mat_q4_1ILb0EEvPKvS1_Pfiiiii(
.param .u32 _Z12mul_mat_q4_1ILb0EEvPKvS1_Pfiiiii_param_7
)
.maxntid 256, 1, 1
.minnctapersm 2
{
ret;
}
.entry _Z14mul_mat_vec_q6(
.param .u32 _Z14mul_mat_vec_q6_param_0
)
.maxntid 64, 1, 1
{
.maxntid 1024, 1, 1
}
"""


def test_registers_and_launch_bounds_are_read_from_the_compilers_output():
    regs = cuda.parse_res_usage(RES_USAGE)
    assert regs == {"_Z12rms_norm_f32ILi1024EEvPKfPfif": 27, "_Z12mul_mat_q4_1ILb0EEvPKvS1_Pfiiiii": 13,
                    "_Z14mul_mat_vec_q6": 241}
    bounds = cuda.parse_launch_bounds(PTX)
    # only the entry's header counts: a `.maxntid` inside a body is not this kernel's bound
    assert bounds == {"_Z12rms_norm_f32ILi1024EEvPKfPfif": None, "_Z12mul_mat_q4_1ILb0EEvPKvS1_Pfiiiii": 256,
                      "_Z14mul_mat_vec_q6": 64}
    fig = cuda.kernel_figures(regs, bounds)
    assert fig["max_registers_unbounded"] == 27 and fig["max_registers_bounded"] == 241
    assert fig["over_block_limit"] == []  # 241 x 64 = 15424 <= 32768


def test_a_kernel_over_sm53s_registers_per_block_is_named():
    fig = cuda.kernel_figures({"k": 200, "ok": 100}, {"k": 256, "ok": 256})
    assert [k["name"] for k in fig["over_block_limit"]] == ["k"]
    assert fig["over_block_limit"][0]["registers_per_block"] == 51200


def test_the_cuda_build_uses_the_nano_plans_variables_with_only_the_compiler_paths_swapped(tmp_path):
    board_vars, board_env, board = cuda.board_plan(tmp_path)
    assert board_vars["LLAMA_CUBLAS"] == "1" and board_vars["CUDA_DOCKER_ARCH"] == "sm_53"
    assert board_vars["LLAMA_CUDA_NVCC"] == f"/usr/local/cuda/bin/nvcc -ccbin {board['g++']}"
    assert board["g++"].endswith("build/toolchain/gcc-8.5.0/bin/g++")
    host = {"nvcc": "/x/cuda-11.8/bin/nvcc", "cuda_bin": "/x/cuda-11.8/bin", "gcc": "/usr/bin/gcc-11",
            "g++": "/usr/bin/g++-11", "gcc_lib": "/usr/lib/gcc/x86_64-linux-gnu/11"}
    mv, env = cuda.swap_paths(board_vars, board, host), cuda.swap_paths(board_env, board, host)
    assert mv["LLAMA_CUDA_NVCC"] == "/x/cuda-11.8/bin/nvcc -ccbin /usr/bin/g++-11"
    assert mv["CXX"] == "/usr/bin/g++-11" and mv["CC"] == "/usr/bin/gcc-11"
    assert dict(env)["PATH"] == "/x/cuda-11.8/bin:$PATH"
    assert set(mv) == set(board_vars)  # the same variables, nothing added or dropped
    flat = json.dumps([mv, env])
    assert "gcc-8.5.0" not in flat and "/usr/local/cuda" not in flat


def test_missing_tools_name_the_install_command_when_not_root(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(common, "DEBIAN_CUDA_NVCC", tmp_path / "no-nvcc")
    monkeypatch.setattr(common, "NEEDS", {**common.NEEDS, "cuda": (str(tmp_path / "no-nvcc"), "g++-11")})
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(UserError) as err:
        common.ensure_tools(("cuda", "aarch64"), install=True, log=lambda s: None)
    assert "g++-11" in err.value.message and "qemu-aarch64-static" in err.value.message
    assert err.value.fix == f"sudo bash {common.deps_script()}"
    assert common.deps_script().is_file()


def test_cpu_flags_are_read_per_language_from_the_build_log():
    log = ("aarch64-linux-gnu-gcc -I. -O3 -mcpu=cortex-a57 -c ggml.c -o ggml.o\n"
           "aarch64-linux-gnu-g++ -std=c++11 -O3 -c llama.cpp -o llama.o\n"
           "aarch64-linux-gnu-g++ -std=c++11 main.o -o main\n")
    assert aarch64.cpu_flags(log) == {"c": ["-mcpu=cortex-a57"], "c++": []}
    assert aarch64.token_ids("  1 -> '<s>'\n 15043 -> ' Hello'\n") == [1, 15043]


def test_an_import_killed_by_sigill_is_recorded_as_such():
    assert pyimports.classify(-signal.SIGILL, "")[0] == "SIGILL"
    assert pyimports.classify(1, "Traceback\nImportError: libfoo.so: cannot open\n") == (
        "error", "ImportError: libfoo.so: cannot open")
    assert pyimports.classify(0, "") == ("ok", None)


def test_the_board_requirements_are_edgebenchs_and_the_report_extras():
    reqs = pyimports.board_requirements()
    names = {r.split(">")[0].split("=")[0].split("<")[0].lower() for r in reqs}
    assert {"click", "psutil", "numpy", "polars", "plotnine"} <= names
    assert "pytest" not in names and "jetson-stats" not in names


def test_acceptance_fails_a_register_count_over_the_cap():
    base = {"nvcc_version": "11.8", "arch": "sm_53", "sass_archs": ["sm_53"], "maxrregcount_in_ptxas": True,
            "max_registers_unbounded": 96, "over_block_limit": [],
            "unpatched": {"sass_archs": ["sm_53"], "kernels": 3, "maxrregcount_in_ptxas": False}}
    verdicts = {a["key"]: a["ok"] for a in report.acceptance(base)}
    assert verdicts["max_registers_unbounded"] is False
    assert verdicts["nvcc_version"] and verdicts["maxrregcount_in_ptxas"] and verdicts["over_block_limit"]


@pytest.fixture(scope="session")
def nano_report(tmp_path_factory) -> dict:
    """The real check, once per session (EDGEBENCH_NANO_CHECK_REPORT: a report.json made earlier)."""
    ready = os.environ.get("EDGEBENCH_NANO_CHECK_REPORT")
    if ready:
        return json.loads(Path(ready).read_text())
    missing = common.missing_tools(report.CHECKS)
    if missing and (os.geteuid() != 0 or not Path("/usr/bin/apt-get").exists()):
        pytest.skip(f"nano-check needs {', '.join(missing)}: run `sudo bash {common.deps_script()}`")
    out = tmp_path_factory.mktemp("nano-check")
    return report.run(out, install=True, log=lambda s: None)


@pytest.mark.slow
def test_nano_check_cuda_sm53_with_the_patch(nano_report):
    r = nano_report
    assert r["nvcc_version"] == "11.8"
    assert r["arch"] == "sm_53" and r["sass_archs"] == ["sm_53"]
    assert r["maxrregcount_in_ptxas"] is True and r["ptxas_maxrregcount"] == 80
    assert r["max_registers_unbounded"] is not None and r["max_registers_unbounded"] <= 80
    assert r["over_block_limit"] == []
    assert r["main_linked"] is True
    assert r["make_vars"]["LLAMA_CUBLAS"] == "1" and "-ccbin" in r["make_vars"]["LLAMA_CUDA_NVCC"]
    un = r["unpatched"]
    assert un["sass_archs"] == ["sm_53"] and un["kernels"] == r["kernels"]
    assert un["ptxas_line_found"] is True and un["maxrregcount_in_ptxas"] is False  # ptxas seen, no cap
    assert un["max_registers_unbounded"] is not None


@pytest.mark.slow
def test_nano_check_aarch64_main_under_a_cortex_a57(nano_report):
    r = nano_report
    assert r["qemu_cpu"] == "cortex-a57"
    assert r["aarch64_lse_canary"]["cortex_a57_rejects_lse"] is True  # the emulated CPU really is ARMv8.0
    assert r["aarch64_cpu_flags"] == {"c": ["-mcpu=cortex-a57"], "c++": []}
    assert r["aarch64_main_status"] == "ok", r.get("aarch64_main_error")
    assert r["aarch64_main_tokens"] > 0 and r["aarch64_stream_tokens"] == r["aarch64_main_tokens"]
    assert r["aarch64_stream_matched"] is True
    assert r["aarch64_tokenize_matches_host"] is True and r["aarch64_tokenize_ids"]


@pytest.mark.slow
def test_nano_check_python_stack_imports_on_armv8_0(nano_report):
    imports = nano_report["imports"]
    for name in ("numpy", "polars", "plotnine", "psutil", "PyYAML", "click"):
        assert name in imports, sorted(imports)
    assert {k: v for k, v in imports.items() if v["status"] != "ok"} == {}
    assert imports["numpy"]["exercised"] and imports["polars"]["exercised"]
    assert nano_report["ok"] is True, [a for a in nano_report["acceptance"] if not a["ok"]]


@pytest.mark.slow
def test_the_committed_constraints_are_what_the_check_proves(nano_report):
    """A newer wheel on the index, or a changed requirement, fails here until
    `edgebench nano-check --only python --write-constraints` pins what was proven."""
    assert constraints.compare(nano_report)["disagreements"] == []


def test_write_constraints_needs_the_python_check(isolated_root):
    from click.testing import CliRunner

    from orchestrator.cli import main

    res = CliRunner().invoke(main, ["nano-check", "--only", "cuda", "--write-constraints", "--no-install"])
    assert res.exit_code == 2 and "--write-constraints pins what the python check proves" in res.output


def test_the_cli_stops_with_the_install_command_when_tools_are_missing(monkeypatch, tmp_path, isolated_root):
    from click.testing import CliRunner

    from orchestrator.cli import main

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(common, "NEEDS", {**common.NEEDS, "aarch64": ("aarch64-linux-gnu-g++", "qemu-aarch64-static")})
    res = CliRunner().invoke(main, ["nano-check", "--only", "aarch64", "--no-install"])
    assert res.exit_code != 0
    assert "aarch64-linux-gnu-g++" in res.output and f"fix: sudo bash {common.deps_script()}" in res.output
    assert not (isolated_root / "build" / "nano-check" / "report.json").exists()
