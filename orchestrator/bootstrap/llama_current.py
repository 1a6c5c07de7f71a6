"""Step `llama-current`: today's llama.cpp, the tree that the llama-cpp-python 0.3.36 sdist on
PyPI vendors, built with CMake: `llama-completion` (the one-shot successor of `main`),
`llama-server` and `llama-tokenize`, in one build. CPU on a host; CUDA for the Orin's sm_87
(planned, shown by a dry run). The a33e6a0 build beside it (build.py) is untouched.

Reproducible: the source is one pinned archive (SHA-256 checked), and every CMake option that
could reach the network (the server's prebuilt web UI, OpenSSL for HTTPS downloads) or depend on
the machine's extras (ccache) is set explicitly. The commit is named to CMake: its own rule asks
git, and the sdist holds no repository."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from orchestrator import fsutil, net, packaged
from orchestrator.bootstrap import patch
from orchestrator.bootstrap.build import compiler_version, jobs_for
from orchestrator.bootstrap.model import VOCAB_SDIST, fetch_sdist
from orchestrator.bootstrap.steps import Command, Context, Step, sh
from orchestrator.errors import UserError

SDIST_PROJECT, SDIST_FILE, SDIST_SHA256 = VOCAB_SDIST
SDIST_VERSION = "0.3.36"
SDIST_PREFIX = f"llama_cpp_python-{SDIST_VERSION}/vendor/llama.cpp/"
# The sdist's CHANGELOG.md, under [0.3.36]: "feat: update llama.cpp to ggml-org/llama.cpp@0c1e57098".
# The archive holds no git data (its vendor/llama.cpp/.git is a dangling gitlink), so this
# abbreviated hash is the packager's word, recorded as such; the release tag's build number
# (`git rev-list --count`) cannot be known without the repository: 0 means unknown, as in
# llama.cpp's own cmake/build-info.cmake.
COMMIT = "0c1e57098"
COMMIT_SOURCE = f"CHANGELOG.md of {SDIST_FILE} ([0.3.36]: update llama.cpp to ggml-org/llama.cpp@{COMMIT})"
BUILD_NUMBER = 0
TARGETS = ("llama-completion", "llama-server", "llama-tokenize")
DIR = "llama-current"  # under build/: the source tree, and its CMake build in build/
# Bumped whenever a change here changes the binaries: the test suite's cached build is keyed on it.
RECIPE = 2
# This tree's logger is a leaked singleton whose thread writes the lines; a program that returns
# before the thread catches up loses them: on a busy core, llama-completion's common_perf_print
# timings (upstream issue 22142). The patch joins the thread at exit.
LOG_PATCH_NAME = "llama.cpp-0c1e57098-log-flush.patch"
# What the source must hold (a truncated extraction, or another archive under the same name,
# fails here rather than deep in CMake).
REQUIRED = ("CMakeLists.txt", "tools/completion/completion.cpp", "tools/server/server.cpp",
            "tools/tokenize/tokenize.cpp", "ggml/src/ggml-cuda/CMakeLists.txt")
ORIN_CUDA_ARCH = "87"  # Jetson AGX Orin / Orin NX / Orin Nano: compute capability 8.7


def log_patch() -> Path:
    return packaged.data_path("patches", LOG_PATCH_NAME)


def source_dir(build: Path) -> Path:
    return Path(build) / DIR


def bin_dir(build: Path) -> Path:
    """Where CMake puts the programs (and the shared libllama/libggml they load)."""
    return source_dir(build) / "build" / "bin"


def cmake_options(profile: str) -> list[str]:
    opts = [
        "-DCMAKE_BUILD_TYPE=Release",
        "-DBUILD_SHARED_LIBS=ON",
        "-DLLAMA_BUILD_TESTS=OFF",
        "-DLLAMA_BUILD_EXAMPLES=OFF",
        "-DLLAMA_OPENSSL=OFF",
        "-DLLAMA_USE_PREBUILT_UI=OFF",
        "-DGGML_CCACHE=OFF",
        f"-DLLAMA_BUILD_COMMIT={COMMIT}",
        f"-DLLAMA_BUILD_NUMBER={BUILD_NUMBER}",
    ]
    if profile == "jetson-orin":
        opts += ["-DGGML_CUDA=ON", f"-DCMAKE_CUDA_ARCHITECTURES={ORIN_CUDA_ARCH}"]
    return opts


def refuse_profile(profile: str) -> None:
    if profile == "jetson-nano":
        # ggml's sources need C++17 (ggml/src/CMakeLists.txt: cxx_std_17), which the nvcc of the
        # Nano's CUDA 10.2 does not offer.
        raise UserError("today's llama.cpp does not build for the Jetson Nano: it needs C++17, which the "
                        "nvcc of JetPack 4's CUDA 10.2 lacks",
                        fix="bootstrap without --engine current on a Nano (the a33e6a0 build is its engine)")


class LlamaCurrent(Step):
    name = "llama-current"
    title = f"today's llama.cpp ({COMMIT}, from {SDIST_FILE}): llama-completion, llama-server, llama-tokenize"

    def binaries(self, ctx: Context) -> dict[str, Path]:
        return {t: bin_dir(ctx.options.build) / t for t in TARGETS}

    def is_done(self, ctx: Context) -> bool:
        entry = ctx.entry(self.name)
        if entry is None or entry.get("recipe") != RECIPE:
            return False
        if entry.get("cmake_options") != cmake_options(ctx.options.profile):
            return False  # built for another profile (CPU for CUDA, or the other way)
        for target, path in self.binaries(ctx).items():
            if not path.is_file() or net.sha256_file(path) != entry.get("binaries", {}).get(target, {}).get("sha256"):
                return False
        return True

    def urls(self, ctx: Context) -> list[tuple[str | tuple[str, ...], str]]:
        if (ctx.options.cache / "downloads" / SDIST_FILE).is_file():
            return []
        return [(net.pypi_index(), f"the {SDIST_FILE} sdist (today's llama.cpp)")]

    def commands(self, ctx: Context) -> list[Command]:
        refuse_profile(ctx.options.profile)
        src = source_dir(ctx.options.build)
        build = src / "build"
        j = jobs_for(ctx.platform, ctx.options.jobs)
        env = self.env(ctx)
        return [
            Command(("download", f"{SDIST_PROJECT}=={SDIST_VERSION}", f"sha256={SDIST_SHA256}")),
            Command(("extract", SDIST_PREFIX, str(src))),
            Command(patch.patch_argv(log_patch(), "--forward"), cwd=str(src)),
            Command(("cmake", "-S", str(src), "-B", str(build), *cmake_options(ctx.options.profile)), env=env),
            Command(("cmake", "--build", str(build), f"-j{j}", "--target", *TARGETS), env=env),
        ]

    def env(self, ctx: Context) -> tuple[tuple[str, str], ...]:
        if ctx.options.profile != "jetson-orin":
            return ()
        from orchestrator.bootstrap import cuda

        return (("PATH", f"{Path(cuda.nvcc_path(cuda.cuda_home())).parent}:$PATH"),)

    def run(self, ctx: Context) -> dict:
        from orchestrator.bootstrap import preflight

        refuse_profile(ctx.options.profile)
        preflight.require_cmake()
        o = ctx.options
        try:
            archive = fetch_sdist(o.cache, ctx.log)
        except net.Unreachable as exc:
            raise UserError(f"cannot download {SDIST_FILE} from PyPI ({exc}), and the cache "
                            f"{o.cache / 'downloads'} does not hold it",
                            fix=f"reach PyPI (export https_proxy=... behind a proxy), or put {SDIST_FILE} "
                                f"(sha256 {SDIST_SHA256}) into {o.cache / 'downloads'}") from exc
        src = source_dir(o.build)
        tmp = o.build / f".{DIR}.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        fsutil.extract_tar(archive, tmp, members=lambda name: name.startswith(SDIST_PREFIX),
                           strip=len(Path(SDIST_PREFIX).parts))
        (tmp / ".git").unlink(missing_ok=True)  # a gitlink to a repository the archive lacks
        missing = [r for r in REQUIRED if not (tmp / r).is_file()]
        if missing or patch.patch_state(tmp, log_patch()) != "clean":
            shutil.rmtree(tmp, ignore_errors=True)
            what = f"{', '.join(missing)} missing" if missing else f"{LOG_PATCH_NAME} does not apply"
            raise UserError(f"{archive} does not hold today's llama.cpp {COMMIT} ({what})",
                            fix=f"rm {archive}; rerun the bootstrap")
        patch.apply_patch(tmp, log_patch())
        shutil.rmtree(src, ignore_errors=True)
        os.replace(tmp, src)
        logs = o.logs_dir
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / "llama-current-build.log"
        log.write_text("")
        cmds = self.commands(ctx)[3:]  # download, extract and patch are done above
        ctx.log(f"  {' '.join(cmds[-1].argv)}  (log: {log})")
        for cmd in cmds:
            sh(cmd, log_path=log)
        return {
            "commit": COMMIT,
            "commit_source": COMMIT_SOURCE,
            "build_number": None,
            "origin": f"pypi:{SDIST_PROJECT}=={SDIST_VERSION}",
            "sdist": SDIST_FILE,
            "sdist_sha256": SDIST_SHA256,
            "recipe": RECIPE,
            "patch": LOG_PATCH_NAME,
            "patch_sha256": net.sha256_file(log_patch()),
            "cmake_options": cmake_options(o.profile),
            "targets": list(TARGETS),
            "jobs": jobs_for(ctx.platform, o.jobs),
            "backend": "cuda" if o.profile == "jetson-orin" else "cpu",
            "compiler": compiler_version(),
            "binaries": {t: {"path": str(p), "sha256": net.sha256_file(p)} for t, p in self.binaries(ctx).items()},
        }
