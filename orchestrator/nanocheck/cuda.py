"""Check 1: llama.cpp a33e6a0 built for sm_53 by CUDA 11.8, with the make variables and nvcc
flags that the `jetson-nano` profile's own plan generates, only the compiler paths swapped
(the board's CUDA 10.2 and GCC 8.5 for Debian's CUDA 11.8 and g++-11). Then what the compiler
produced: the SASS architectures, each kernel's registers and launch bound, and whether
`-maxrregcount=80` reached ptxas."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from orchestrator import paths
from orchestrator.envvars import environ
from orchestrator.nanocheck import common

SM53_REGS_PER_BLOCK = 32768  # "too many resources requested for launch" above this, per block
PATCH_REG_CAP = 80
BOARD_CUDA_HOME = "/usr/local/cuda"  # where JetPack puts CUDA 10.2, and what the plan uses

# Debian's nvcc is found through a folder of its own: /usr/local/bin may hold a newer CUDA's
# ptxas, which nvcc would otherwise pick up from PATH and which rejects sm_53.
HIDE_OTHER_CUDA = [
    "# keep any other CUDA under /usr/local/cuda (the Makefile adds its include and lib dirs) out of the build",
    "HIDE_CUDA := -I/usr/local/cuda% -L/usr/local/cuda%",
    *(f"override {v} := $(filter-out $(HIDE_CUDA),$({v}))" for v in ("CPPFLAGS", "CFLAGS", "CXXFLAGS", "LDFLAGS")),
]


def cuda_shim(dest: Path) -> Path:
    """A CUDA home whose bin/ holds CUDA 11.8's tools only (Debian spreads them over two folders)."""
    bin_dir = dest / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    nvcc_dir = common.DEBIAN_CUDA_NVCC.parent
    links = {name: nvcc_dir / name for name in ("nvcc", "cicc", "crt", "nvcc.profile")}
    links.update({name: Path("/usr/bin") / name for name in common.CUDA_TOOLS})
    for name, target in links.items():
        link = bin_dir / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
    return dest


def board_plan(work: Path) -> tuple[dict[str, str], tuple[tuple[str, str], ...], dict[str, str]]:
    """The make variables and environment that `edgebench bootstrap --profile jetson-nano` builds
    with on a Nano whose probe said 5.3, from the plan's own code; and the board's compiler paths."""
    from orchestrator.bootstrap import cuda, gcc
    from orchestrator.bootstrap.ledger import Ledger
    from orchestrator.bootstrap.steps import Context, Options

    opts = Options(root=paths.project_root(), cache=work / "board-cache", profile="jetson-nano")
    ledger = Ledger(work / "board-ledger.json")
    ledger.record("cuda-probe", {"status": "done", "arch": "53", "compute_capability": "5.3"})
    ctx = Context(opts, ledger, {}, log=lambda s: None)
    with environ(EDGEBENCH_CUDA_HOME=BOARD_CUDA_HOME):
        mv, env = cuda.build_vars(ctx)
    board_paths = {
        "nvcc": cuda.nvcc_path(Path(BOARD_CUDA_HOME)),
        "cuda_bin": str(Path(BOARD_CUDA_HOME) / "bin"),
        "gcc": str(gcc.gcc_bin(ctx, "gcc")),
        "g++": str(gcc.gcc_bin(ctx, "g++")),
        "gcc_lib": str(gcc.prefix(ctx) / "lib64"),
    }
    return mv, env, board_paths


def host_paths(shim: Path) -> dict[str, str]:
    import shutil

    gxx = shutil.which(common.HOST_GXX) or common.HOST_GXX
    lib = common.run([gxx, "-print-file-name=libstdc++.so"]).stdout.strip()
    return {
        "nvcc": str(shim / "bin" / "nvcc"),
        "cuda_bin": str(shim / "bin"),
        "gcc": shutil.which(common.HOST_GCC) or common.HOST_GCC,
        "g++": gxx,
        "gcc_lib": str(Path(lib).parent) if lib.startswith("/") else "/usr/lib",
    }


def swap_paths(values, board: dict[str, str], host: dict[str, str]):
    """Each board path replaced by the host's, longest first (the nvcc path contains cuda_bin)."""
    order = sorted(board, key=lambda k: -len(board[k]))

    def one(text: str) -> str:
        for key in order:
            text = text.replace(board[key], host[key])
        return text

    if isinstance(values, dict):
        return {k: one(v) for k, v in values.items()}
    return tuple((k, one(v)) for k, v in values)


# -- reading what the compiler produced ------------------------------------------------------

def nvcc_version(nvcc: str) -> str | None:
    m = re.search(r"release ([\d.]+)", common.run([nvcc, "--version"]).stdout)
    return m.group(1) if m else None


def sass_archs(cuobjdump: str, binary: Path) -> list[str]:
    out = common.run([cuobjdump, "--list-elf", str(binary)]).stdout
    return sorted(set(re.findall(r"\.(sm_\d+)\.cubin", out)))


def parse_res_usage(text: str) -> dict[str, int]:
    """`cuobjdump -res-usage`: {kernel: registers}."""
    regs: dict[str, int] = {}
    name = None
    for line in text.splitlines():
        m = re.match(r"\s*Function ([^\s:]+):", line)
        if m:
            name = m.group(1)
            continue
        m = re.search(r"\bREG:(\d+)", line)
        if m and name:
            regs[name] = int(m.group(1))
            name = None
    return regs


def parse_launch_bounds(ptx: str) -> dict[str, int | None]:
    """{kernel: threads of its `.maxntid`, or None}: the PTX entry's header, up to its body's `{`."""
    bounds: dict[str, int | None] = {}
    for m in re.finditer(r"\.entry\s+([\w$]+)\s*\(", ptx):
        header = ptx[m.end():ptx.find("{", m.end())]
        mx = re.search(r"\.maxntid\s+(\d+)(?:\s*,\s*(\d+))?(?:\s*,\s*(\d+))?", header)
        bounds[m.group(1)] = (int(mx.group(1)) * int(mx.group(2) or 1) * int(mx.group(3) or 1)) if mx else None
    return bounds


def kernel_figures(regs: dict[str, int], bounds: dict[str, int | None]) -> dict:
    kernels = [{"name": k, "registers": r, "launch_bound": bounds.get(k)} for k, r in sorted(regs.items())]
    unbounded = [k["registers"] for k in kernels if k["launch_bound"] is None]
    bounded = [k for k in kernels if k["launch_bound"] is not None]
    over = [{"name": k["name"], "registers": k["registers"], "launch_bound": k["launch_bound"],
             "registers_per_block": k["registers"] * k["launch_bound"]}
            for k in bounded if k["registers"] * k["launch_bound"] > SM53_REGS_PER_BLOCK]
    return {
        "kernels": len(kernels),
        "kernels_without_launch_bound": len(unbounded),
        "max_registers_unbounded": max(unbounded, default=None),
        "kernels_with_launch_bound": len(bounded),
        "max_registers_bounded": max((k["registers"] for k in bounded), default=None),
        "launch_bounds": sorted({k["launch_bound"] for k in bounded}),
        "over_block_limit": over,
        "kernel_registers": kernels,
    }


def read_object(cuobjdump: str, obj: Path) -> dict:
    regs = parse_res_usage(common.run([cuobjdump, "-res-usage", str(obj)]).stdout)
    bounds = parse_launch_bounds(common.run([cuobjdump, "-ptx", str(obj)], timeout=600).stdout)
    return kernel_figures(regs, bounds)


def ptxas_maxrregcount(tree: Path, make_vars: dict[str, str], env) -> dict:
    """The -maxrregcount that ptxas gets: the Makefile's own nvcc command for ggml-cuda.o (make -n),
    rerun with -dryrun, which lists each sub-command nvcc would run."""
    listing = common.make(tree, make_vars, ("ggml-cuda.o",), Path(os.devnull), env=env, dry=True)
    nvcc = make_vars["LLAMA_CUDA_NVCC"].split()[0]
    line = next((ln for ln in listing.splitlines() if nvcc in ln and "ggml-cuda.cu" in ln), None)
    found: dict = {"ptxas_line_found": False, "ptxas_maxrregcount": None}
    if line is None:
        return found
    argv = shlex.split(line)
    argv = argv[argv.index(nvcc):]  # past a ccache the Makefile may put in front
    argv.insert(1, "-dryrun")
    full_env = dict(os.environ)
    for k, v in env:
        full_env[k] = v.replace(f"${k}", os.environ.get(k, ""))
    proc = common.run(argv, cwd=str(tree), env=full_env)
    for ln in (proc.stdout + proc.stderr).splitlines():
        if re.search(r"\bptxas\b", ln):
            m = re.search(r"maxrregcount[= ]+(\d+)", ln)
            found.update(ptxas_line_found=True, ptxas_maxrregcount=int(m.group(1)) if m else None)
    return found


def check(work: Path, log) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    shim = cuda_shim(work / "cuda-11.8")
    plan_vars, plan_env, board = board_plan(work)
    host = host_paths(shim)
    mv, env = swap_paths(plan_vars, board, host), swap_paths(plan_env, board, host)
    cuobjdump = str(shim / "bin" / "cuobjdump")
    result: dict = {
        "nvcc_version": nvcc_version(host["nvcc"]),
        "arch": plan_vars["CUDA_DOCKER_ARCH"],
        "board_make_vars": plan_vars,
        "board_env": dict(plan_env),
        "make_vars": mv,
        "env": dict(env),
        "swapped_paths": {board[k]: host[k] for k in board},
    }
    figures = {}
    for name, patched, targets in (("patched", True, ("main",)), ("unpatched", False, ("ggml-cuda.o",))):
        log(f"cuda: building {' '.join(targets)} for {result['arch']} ({name})")
        tree = common.fresh_tree(work / f"llama-{name}", patched, log)
        common.override_makefile(tree, HIDE_OTHER_CUDA, "build with Debian's CUDA 11.8 only")
        common.make(tree, mv, targets, work / "logs" / f"cuda-{name}.log", env=env)
        fig = read_object(cuobjdump, tree / "ggml-cuda.o")
        fig["sass_archs"] = sass_archs(cuobjdump, tree / targets[0])
        fig.update(ptxas_maxrregcount(tree, mv, env))
        fig["maxrregcount_in_ptxas"] = fig["ptxas_maxrregcount"] == PATCH_REG_CAP
        if patched:
            fig["main_linked"] = (tree / "main").is_file()
        figures[name] = fig
    result.update(figures["patched"])
    result["unpatched"] = {k: v for k, v in figures["unpatched"].items() if k != "kernel_registers"}
    before = {k["name"]: k["registers"] for k in figures["unpatched"]["kernel_registers"]}
    result["registers_changed_by_patch"] = [
        {"name": k["name"], "patched": k["registers"], "unpatched": before[k["name"]]}
        for k in figures["patched"]["kernel_registers"] if before.get(k["name"], k["registers"]) != k["registers"]]
    return result
