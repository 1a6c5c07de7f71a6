"""Step: build llama.cpp's `main`, `tokenize`, `quantize` and `llama-bench`, with flags
chosen from the platform (CPU on a host, CUDA for the probed architecture on a Jetson)."""

from __future__ import annotations

import subprocess

from orchestrator.bootstrap.steps import Command, Context, Step, sh
from orchestrator.net import sha256_file

TARGETS = ("main", "tokenize", "quantize", "llama-bench")
GIB = 1 << 30


def make_vars(ctx: Context) -> dict[str, str]:
    """make variables: none on a host (CPU build); on a Jetson, the CUDA build's (see cuda.py)."""
    return build_settings(ctx)[0]


def build_settings(ctx: Context) -> tuple[dict[str, str], tuple[tuple[str, str], ...]]:
    """(make variables, environment) of the build command."""
    if ctx.options.profile == "host":
        return {}, ()
    from orchestrator.bootstrap import cuda

    return cuda.build_vars(ctx)


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
    depends = ("patch", "gcc", "cuda-probe")  # the last two exist on Jetson profiles only

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
        mv, env = build_settings(ctx)
        j = jobs_for(ctx.platform, ctx.options.jobs)
        cwd = str(ctx.options.llama_dir)
        return [
            Command(("make", "clean"), cwd=cwd),
            Command(("make", f"-j{j}", *(f"{k}={v}" for k, v in mv.items()), *TARGETS), cwd=cwd, env=env),
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
        mv = make_vars(ctx)
        return {
            "make_vars": mv,
            "targets": list(TARGETS),
            "jobs": jobs_for(ctx.platform, ctx.options.jobs),
            "backend": "cuda" if ctx.options.profile != "host" else "cpu",
            "compiler": compiler_version(mv.get("CXX", "c++")),
            "binaries": {t: {"path": str(p), "sha256": sha256_file(p)} for t, p in self.binaries(ctx).items()},
        }
