"""What the three checks share: the host tools they need, a fresh llama.cpp a33e6a0 tree from
the cached sdist, and `make` with the build's own variables plus a small override makefile."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from orchestrator import paths
from orchestrator.bootstrap.steps import Command, sh
from orchestrator.errors import UserError

DEPS_SCRIPT = "nano-check-deps.sh"  # orchestrator/data/scripts/
JOBS = 2
# Debian's CUDA 11.8 (nvidia-cuda-toolkit): nvcc in its own folder, the other tools in /usr/bin.
DEBIAN_CUDA_NVCC = Path("/usr/lib/nvidia-cuda-toolkit/bin/nvcc")
CUDA_TOOLS = ("ptxas", "fatbinary", "nvlink", "cudafe++", "bin2c", "cuobjdump", "nvdisasm", "cu++filt", "nvprune")
HOST_GCC = "gcc-11"
HOST_GXX = "g++-11"
CROSS_GCC = "aarch64-linux-gnu-gcc"
CROSS_GXX = "aarch64-linux-gnu-g++"
QEMU = "qemu-aarch64-static"
CROSS_SYSROOT = Path("/usr/aarch64-linux-gnu")

# what each check needs on the host, as (description, predicate path or program)
NEEDS = {
    "cuda": (str(DEBIAN_CUDA_NVCC), "/usr/bin/ptxas", "/usr/bin/cuobjdump", HOST_GCC, HOST_GXX),
    "aarch64": (CROSS_GCC, CROSS_GXX, QEMU),
    "python": (QEMU, "apt-get", "dpkg"),
}


def check_dir(root: Path | None = None) -> Path:
    return (root or paths.build_dir()) / "nano-check"


def missing_tools(checks: tuple[str, ...]) -> list[str]:
    out = []
    for check in checks:
        for tool in NEEDS[check]:
            found = Path(tool).exists() if tool.startswith("/") else shutil.which(tool)
            if not found and tool not in out:
                out.append(tool)
    return out


def deps_script() -> Path:
    from orchestrator import packaged

    return packaged.board_script(DEPS_SCRIPT)


def ensure_tools(checks: tuple[str, ...], install: bool, log) -> None:
    """Install the Debian packages when allowed and root; otherwise one message naming the command."""
    missing = missing_tools(checks)
    if not missing:
        return
    script = deps_script()
    if install and os.geteuid() == 0:
        log(f"installing the nano-check packages ({', '.join(missing)} missing): {script}")
        sh(Command(("bash", str(script))), timeout=3600)
        missing = missing_tools(checks)
        if not missing:
            return
    raise UserError(
        f"nano-check needs {', '.join(missing)} (CUDA 11.8, g++-11, the aarch64 cross compiler, qemu-user-static)",
        fix=f"sudo bash {script}",
    )


def fresh_tree(dest: Path, patched: bool, log) -> Path:
    """llama.cpp a33e6a0 from the cached PyPI sdist (downloaded once), with or without the Nano patch."""
    from orchestrator.bootstrap.ledger import Ledger
    from orchestrator.bootstrap.llama_source import LlamaSource, fingerprint_mismatches
    from orchestrator.bootstrap.patch import apply_patch
    from orchestrator.bootstrap.steps import Context, Options

    shutil.rmtree(dest, ignore_errors=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    opts = Options(root=dest.parent, cache=paths.cache_dir(), llama_source="pypi")
    ctx = Context(opts, Ledger(dest.parent / ".unused-ledger.json"), {}, log=log)
    LlamaSource()._from_pypi(ctx, dest)
    bad = fingerprint_mismatches(dest)
    if bad:
        raise UserError(f"the cached llama.cpp sdist is not a33e6a0 ({', '.join(bad)} differ)",
                        fix=f"rm {paths.cache_dir() / 'downloads'}/llama_cpp_python-*.tar.gz")
    if patched:
        apply_patch(dest)
    return dest


def override_makefile(tree: Path, lines: list[str], why: str) -> Path:
    """A makefile that includes llama.cpp's own and then adjusts its final flags: the Makefile's
    variables and rules stay exactly as they are, only the adjustments named here differ."""
    mk = tree / "nano-check.mk"
    body = [f"# Written by edgebench nano-check: {why}", "include Makefile", *lines, ""]
    mk.write_text("\n".join(body))
    return mk


def make(tree: Path, make_vars: dict[str, str], targets: tuple[str, ...], log_path: Path,
         env: tuple[tuple[str, str], ...] = (), dry: bool = False) -> str:
    argv = ["make", "-f", "nano-check.mk", f"-j{JOBS}", *(f"{k}={v}" for k, v in make_vars.items()), *targets]
    if dry:
        argv[1:1] = ["-n", "-B"]
        return sh(Command(tuple(argv), cwd=str(tree), env=env), timeout=120)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as f:
        f.write(f"$ {' '.join(argv)}\n".encode())
    return sh(Command(tuple(argv), cwd=str(tree), env=env), log_path=log_path, timeout=3600)


def run(argv: list[str], timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=timeout, **kw)
