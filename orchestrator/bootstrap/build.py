"""Step: build llama.cpp's `main`, `tokenize`, `quantize`, `llama-bench` and `server`, with flags
chosen from the platform (CPU on a host, CUDA for the probed architecture on a Jetson)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from orchestrator.bootstrap.llama_source import COMMIT
from orchestrator.bootstrap.steps import Command, Context, Step, sh
from orchestrator.net import sha256_file

TARGETS = ("main", "tokenize", "quantize", "llama-bench", "server")
GIB = 1 << 30
# llama.cpp's release tags count commits (`git rev-list --count HEAD`): a33e6a0 is tag b2275.
BUILD_NUMBER = 2275
BUILD_INFO = "common/build-info.cpp"
# Bumped whenever a change here changes the binaries a build makes: caches of builds (the test
# suite's scratch build) are keyed on it, so they rebuild instead of running old binaries.
RECIPE = 3


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


def compiler_facts(cc: str) -> dict:
    """What llama.cpp's scripts/build-info.sh asks the C compiler: its first --version line and its target."""
    try:
        target = subprocess.run([cc, "-dumpmachine"], capture_output=True, text=True, timeout=20).stdout.strip()
    except OSError:
        target = ""
    return {"compiler": compiler_version(cc), "target": target or "unknown"}


def write_build_info(tree: Path, cc: str) -> dict:
    """common/build-info.cpp naming a33e6a0 and the compiler of this build. llama.cpp's own rule
    runs `git rev-parse` in the working directory: inside an edgebench checkout it names
    edgebench's commit, elsewhere "unknown"; the sdist's copy names the packager's compiler.
    `make -o` (see commands()) keeps the Makefile from regenerating it."""
    facts = {"commit": COMMIT, "build_number": BUILD_NUMBER, **compiler_facts(cc)}

    def c_str(text: str) -> str:
        return text.replace("\\", "\\\\").replace('"', '\\"')

    (tree / BUILD_INFO).write_text(
        f"int LLAMA_BUILD_NUMBER = {BUILD_NUMBER};\n"
        f'char const *LLAMA_COMMIT = "{c_str(COMMIT)}";\n'
        f'char const *LLAMA_COMPILER = "{c_str(facts["compiler"])}";\n'
        f'char const *LLAMA_BUILD_TARGET = "{c_str(facts["target"])}";\n'
    )
    return facts


class BuildLlama(Step):
    name = "build"
    title = "build llama.cpp main, tokenize, quantize, llama-bench, server"
    depends = ("patch", "gcc", "cuda-probe")  # the last two exist on Jetson profiles only

    def binaries(self, ctx: Context) -> dict:
        return {t: ctx.options.llama_dir / t for t in TARGETS}

    def is_done(self, ctx: Context) -> bool:
        entry = ctx.entry(self.name)
        if entry is None or (entry.get("build_info") or {}).get("commit") != COMMIT:
            return False  # built before edgebench wrote build-info.cpp: the binaries name another commit
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
            Command(("write", BUILD_INFO, f"LLAMA_COMMIT={COMMIT}", f"LLAMA_BUILD_NUMBER={BUILD_NUMBER}",
                     f"LLAMA_COMPILER=$({mv.get('CC', 'cc')} --version | head -1)"), cwd=cwd),
            Command(("make", f"-j{j}", "-o", BUILD_INFO, *(f"{k}={v}" for k, v in mv.items()), *TARGETS),
                    cwd=cwd, env=env),
        ]

    def run(self, ctx: Context) -> dict:
        logs = ctx.options.build / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / "llama-build.log"
        log.write_text("")
        cmds = self.commands(ctx)
        ctx.log(f"  {' '.join(cmds[-1].argv)}  (log: {log})")
        mv = make_vars(ctx)
        info = None
        for cmd in cmds:
            if cmd.argv[0] == "write":
                info = write_build_info(ctx.options.llama_dir, mv.get("CC", "cc"))
            else:
                sh(cmd, log_path=log)
        return {
            "make_vars": mv,
            "targets": list(TARGETS),
            "jobs": jobs_for(ctx.platform, ctx.options.jobs),
            "backend": "cuda" if ctx.options.profile != "host" else "cpu",
            "compiler": compiler_version(mv.get("CXX", "c++")),
            "build_info": info,
            "binaries": {t: {"path": str(p), "sha256": sha256_file(p)} for t, p in self.binaries(ctx).items()},
        }
