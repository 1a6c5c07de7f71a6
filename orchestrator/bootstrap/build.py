"""Step: build llama.cpp's `main`, `tokenize`, `quantize` and `llama-bench`, with flags
chosen from the platform (CPU on a host, CUDA for the probed architecture on a Jetson)."""

from __future__ import annotations

import subprocess

from orchestrator.bootstrap.steps import Command, Context, Step, sh
from orchestrator.errors import UserError
from orchestrator.net import sha256_file

TARGETS = ("main", "tokenize", "quantize", "llama-bench")
GIB = 1 << 30


def make_vars(platform: dict, profile: str) -> dict[str, str]:
    if profile == "host":
        return {}
    arch = platform.get("cuda_arch")
    if not arch:
        raise UserError(
            f"profile {profile} builds with CUDA, but the GPU's compute capability is unknown",
            fix="edgebench doctor (it probes the GPU); check that /usr/local/cuda exists",
        )
    return {"LLAMA_CUBLAS": "1", "CUDA_DOCKER_ARCH": f"sm_{arch}"}


def jobs_for(platform: dict, asked: int | None) -> int:
    """One job per core, but no more than free memory allows (≈1.5 GiB per compiler)."""
    if asked:
        return asked
    cores = platform.get("cpu_count") or 1
    avail = platform.get("mem_available_bytes") or 2 * GIB
    return max(1, min(cores, int(avail // (1.5 * GIB))))


def compiler_version(cxx: str = "c++") -> str:
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=20).stdout
    except OSError:
        return "unknown"
    return out.splitlines()[0] if out else "unknown"


class BuildLlama(Step):
    name = "build"
    title = "build llama.cpp main, tokenize, quantize, llama-bench"
    depends = ("patch",)

    def binaries(self, ctx: Context) -> dict:
        return {t: ctx.options.llama_dir / t for t in TARGETS}

    def is_done(self, ctx: Context) -> bool:
        entry = ctx.entry(self.name)
        if entry is None:
            return False
        for target, path in self.binaries(ctx).items():
            if not path.is_file() or sha256_file(path) != entry.get("binaries", {}).get(target, {}).get("sha256"):
                return False
        return True

    def commands(self, ctx: Context) -> list[Command]:
        mv = make_vars(ctx.platform, ctx.options.profile)
        j = jobs_for(ctx.platform, ctx.options.jobs)
        cwd = str(ctx.options.llama_dir)
        return [
            Command(("make", "clean"), cwd=cwd),
            Command(("make", f"-j{j}", *(f"{k}={v}" for k, v in mv.items()), *TARGETS), cwd=cwd),
        ]

    def run(self, ctx: Context) -> dict:
        logs = ctx.options.build / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / "llama-build.log"
        log.write_text("")
        cmds = self.commands(ctx)
        ctx.log(f"  {' '.join(cmds[-1].argv)}  (log: {log})")
        for cmd in cmds:
            sh(cmd, log_path=log)
        return {
            "make_vars": make_vars(ctx.platform, ctx.options.profile),
            "targets": list(TARGETS),
            "jobs": jobs_for(ctx.platform, ctx.options.jobs),
            "backend": "cuda" if ctx.options.profile != "host" else "cpu",
            "compiler": compiler_version(),
            "binaries": {t: {"path": str(p), "sha256": sha256_file(p)} for t, p in self.binaries(ctx).items()},
        }
