"""CUDA on a Jetson: find the toolkit, probe the GPU's compute capability with a tiny program
(`cudaGetDeviceProperties`, never a guessed sm_XX), the make variables of a CUDA build of
llama.cpp (nvcc on PATH only for that command, GCC 8.5 as nvcc's host compiler on the Nano),
and a smoke test that turns "no kernel image is available" into a message about the arch."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from orchestrator.bootstrap import gcc
from orchestrator.bootstrap.steps import Command, Context, Step, sh
from orchestrator.bootstrap.system import capture
from orchestrator.errors import UserError
from orchestrator.sysinfo import sysroot

DEFAULT_CUDA = "/usr/local/cuda"
ARCH_PLACEHOLDER = "<probed>"  # shown by a dry run where the probe cannot run (no nvcc here)

PROBE_SOURCE = r"""// Written by edgebench: print the compute capability of GPU 0 as MAJOR.MINOR.
#include <cstdio>
#include <cuda_runtime.h>
int main() {
    cudaDeviceProp prop;
    cudaError_t err = cudaGetDeviceProperties(&prop, 0);
    if (err != cudaSuccess) {
        std::fprintf(stderr, "cudaGetDeviceProperties: %s\n", cudaGetErrorString(err));
        return 1;
    }
    std::printf("%d.%d\n", prop.major, prop.minor);
    return 0;
}
"""


def cuda_home() -> Path | None:
    """EDGEBENCH_CUDA_HOME, else /usr/local/cuda (under EDGEBENCH_SYSROOT), else where nvcc on PATH lives."""
    env = os.environ.get("EDGEBENCH_CUDA_HOME")
    if env:
        return Path(env)
    default = sysroot() / DEFAULT_CUDA.lstrip("/")
    if (default / "bin" / "nvcc").exists():
        return default
    nvcc = shutil.which("nvcc")
    return Path(nvcc).resolve().parent.parent if nvcc else None


def nvcc_path(home: Path | None) -> str:
    return str((home or Path(DEFAULT_CUDA)) / "bin" / "nvcc")


def uses_own_gcc(profile: str) -> bool:
    """The Nano (CUDA 10.2) needs GCC 8.5 as host compiler; Orin's CUDA 11/12 takes the system's."""
    return profile == "jetson-nano"


def probe_dir(ctx: Context) -> Path:
    return ctx.options.build / "cuda-probe"


def probe_commands(home: Path | None, workdir: Path) -> list[Command]:
    exe = workdir / "cc-probe"
    return [
        Command((nvcc_path(home), "-o", str(exe), str(workdir / "cc-probe.cu"))),
        Command((str(exe),)),
    ]


def run_probe(home: Path | None, workdir: Path) -> str:
    """Compile and run the probe; return the compute capability, e.g. '5.3'."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "cc-probe.cu").write_text(PROBE_SOURCE)
    build, run = probe_commands(home, workdir)
    sh(build)
    rc, out = capture(run.argv, timeout=60)
    m = re.search(r"^(\d+)\.(\d+)\s*$", out, re.M)
    if rc != 0 or not m:
        raise UserError(
            f"the compute-capability probe ({run.argv[0]}) failed (exit {rc}): {out.strip()[-500:]}",
            fix="check that the GPU is visible (`tegrastats`, `ls /dev/nvhost*`) and that you are in the "
            "`video` group; then rerun `make bootstrap`",
        )
    return f"{m.group(1)}.{m.group(2)}"


def arch(ctx: Context) -> str | None:
    """'53' for compute capability 5.3: from the ledger, else (dry run) probed in a scratch folder."""
    entry = ctx.entry("cuda-probe")
    if entry:
        return entry["arch"]
    if "probed_arch" not in ctx.results:
        home = cuda_home()
        found = None
        if home and ctx.dry_run:
            try:
                with tempfile.TemporaryDirectory(prefix="edgebench-probe-") as tmp:
                    found = run_probe(home, Path(tmp)).replace(".", "")
            except UserError:
                found = None
        ctx.results["probed_arch"] = found
    return ctx.results["probed_arch"]


class CudaProbe(Step):
    name = "cuda-probe"
    title = "find CUDA and probe the GPU's compute capability (chooses sm_XX)"

    def commands(self, ctx: Context) -> list[Command]:
        home = cuda_home()
        cmds = probe_commands(home, probe_dir(ctx))
        if arch(ctx) is None:
            cmds.insert(0, Command(("# the probe cannot run here (no nvcc/GPU): on the board it prints e.g. 5.3 "
                                    "(a Nano), and the build uses sm_53",)))
        return cmds

    def run(self, ctx: Context) -> dict:
        home = cuda_home()
        if home is None:
            raise UserError(
                f"CUDA is not installed: no {DEFAULT_CUDA}/bin/nvcc and no nvcc on PATH",
                fix="flash JetPack (it installs CUDA), or `sudo apt-get install nvidia-jetpack`",
            )
        cc = run_probe(home, probe_dir(ctx))
        ctx.log(f"  GPU compute capability {cc}: building for sm_{cc.replace('.', '')}")
        rc, out = capture([nvcc_path(home), "--version"], timeout=30)
        m = re.search(r"release ([\d.]+)", out)
        return {
            "cuda_home": str(home),
            "nvcc_version": m.group(1) if m else None,
            "compute_capability": cc,
            "arch": cc.replace(".", ""),
        }


def build_vars(ctx: Context) -> tuple[dict[str, str], tuple[tuple[str, str], ...]]:
    """make variables and the environment of the CUDA build of llama.cpp."""
    home = cuda_home()
    found = arch(ctx)
    if found is None and not ctx.dry_run:
        raise UserError(
            f"profile {ctx.options.profile} builds with CUDA, but the GPU's compute capability is unknown",
            fix="edgebench bootstrap --redo cuda-probe (check that /usr/local/cuda exists)",
        )
    nvcc = nvcc_path(home)
    mv: dict[str, str] = {}
    if uses_own_gcc(ctx.options.profile):
        cc, cxx = gcc.gcc_bin(ctx, "gcc"), gcc.gcc_bin(ctx, "g++")
        mv.update(CC=str(cc), CXX=str(cxx))
        nvcc = f"{nvcc} -ccbin {cxx}"
        # binaries find GCC 8.5's libstdc++ without LD_LIBRARY_PATH
        mv["LDFLAGS"] = f"-Wl,-rpath,{gcc.prefix(ctx) / 'lib64'}"
    mv.update(LLAMA_CUBLAS="1", CUDA_DOCKER_ARCH=f"sm_{found or ARCH_PLACEHOLDER}", LLAMA_CUDA_NVCC=nvcc)
    env = (("PATH", f"{Path(nvcc_path(home)).parent}:$PATH"),)
    return mv, env


# -- smoke test --------------------------------------------------------------------------------

NO_KERNEL = "no kernel image is available"


class Smoke(Step):
    name = "smoke"
    title = "smoke test: `main -ngl 1` on the model, on the GPU"
    depends = ("build", "model")

    def argv(self, ctx: Context) -> tuple[str, ...]:
        model = (ctx.entry("model") or {}).get("path", "<model from the model step>")
        return (str(ctx.options.llama_dir / "main"), "-m", model, "-p", "Hello", "-n", "8",
                "-ngl", "1", "-s", "1", "--ignore-eos")

    def commands(self, ctx: Context) -> list[Command]:
        return [Command(self.argv(ctx), cwd=str(ctx.options.build))]

    def run(self, ctx: Context) -> dict:
        argv = self.argv(ctx)
        try:
            proc = subprocess.run(argv, cwd=ctx.options.build, capture_output=True, text=True, errors="replace",
                                  timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise UserError(f"smoke test `{' '.join(argv)}` could not run: {exc}",
                            fix="edgebench bootstrap --redo build") from exc
        out = proc.stdout + proc.stderr
        check_smoke_output(ctx, proc.returncode, out)
        offload = re.search(r"offloaded (\d+)/(\d+) layers to GPU", out)
        ctx.log(f"  main ran on the GPU ({offload.group(0) if offload else 'no offload line'})")
        return {"argv": list(argv), "offloaded": offload.group(0) if offload else None}


def check_smoke_output(ctx: Context, returncode: int, out: str) -> None:
    if NO_KERNEL in out:
        built = (ctx.entry("cuda-probe") or {}).get("arch", "?")
        cc = (ctx.entry("cuda-probe") or {}).get("compute_capability", "?")
        raise UserError(
            f"llama.cpp's CUDA kernels do not run on this GPU (\"{NO_KERNEL}\"): they were built for "
            f"sm_{built}, and the probe said compute capability {cc}. A Jetson Nano is 5.3 (sm_53); "
            "sm_62 (a widely copied guide) builds but fails exactly like this",
            fix="edgebench bootstrap --redo cuda-probe (probes the GPU again and rebuilds for it)",
        )
    if returncode != 0:
        tail = "\n".join(out.strip().splitlines()[-15:])
        raise UserError(f"smoke test: main exited with {returncode}:\n{tail}",
                        fix="edgebench bootstrap --redo build")
