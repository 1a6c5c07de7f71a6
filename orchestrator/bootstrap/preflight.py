"""Preflight for a board, before anything slow: L4T release, module, free disk, memory and
swap, power mode, sudo, and whether each download answers. Each check says what it saw; a
refusal says what to do. It only asks about what the remaining steps need (a GCC built from
source needs disk and swap; --gcc-from needs neither). `--make-swap` and `--max-power` are the
only things it changes, and only when asked."""

from __future__ import annotations

import math
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from orchestrator import net
from orchestrator.bootstrap import gcc
from orchestrator.bootstrap.steps import Context, Step
from orchestrator.bootstrap.system import capture, sudo
from orchestrator.errors import UserError
from orchestrator.sysinfo import existing_parent, jetson_model, l4t_release, meminfo, sysroot

GIB = 1 << 30
# GCC's build tree (source, objects of a 3-stage bootstrap, install) reaches about 5 GiB.
GCC_BUILD_BYTES = 6 * GIB
# A GCC build already under way (a rerun after a failure) has taken most of that: keep headroom.
GCC_RESUME_BYTES = 1 * GIB
# llama.cpp's tree and objects plus the model (≈0.8 GB) and its download.
LLAMA_AND_MODEL_BYTES = 2 * GIB
# A GCC bootstrap's cc1plus runs take 1+ GiB each; a stock Nano has 3.9 GiB RAM + 1.9 GiB
# zram swap, which `make -j2` outgrows. 8 GiB of memory + swap carries it.
GCC_MEM_SWAP_BYTES = 8 * GIB
SWAPFILE = "/swapfile-edgebench"
# The JetPack major each profile expects, from /etc/nv_tegra_release (R32 = JetPack 4).
L4T_MAJOR = {"jetson-nano": ("32",), "jetson-orin": ("35", "36")}


@dataclass
class Check:
    check: str
    level: str  # ok | warn | refuse
    detail: str
    fix: str | None = None


def disk_free(path: Path) -> int:
    """Free bytes on the file system that holds `path` (or its nearest existing parent)."""
    return shutil.disk_usage(existing_parent(path)).free


def _gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB"


def check_board(ctx: Context) -> list[Check]:
    root = sysroot()
    profile = ctx.options.profile
    out = []
    release, model = l4t_release(root), jetson_model(root)
    if release is None:
        out.append(Check("l4t", "refuse", f"no L4T release in {root / 'etc/nv_tegra_release'}: not a Jetson "
                         "(or not flashed with JetPack)", "--profile host on a machine that is not a Jetson; "
                         "flash JetPack 4.6.x on a Nano"))
    elif release.split(".")[0] not in L4T_MAJOR.get(profile, ()):
        want = " or ".join(f"R{m}" for m in L4T_MAJOR.get(profile, ()))
        other = "jetson-orin" if profile == "jetson-nano" else "jetson-nano"
        out.append(Check("l4t", "refuse", f"L4T {release} is not what profile {profile} expects ({want})",
                         f"--profile {other}, or flash the JetPack this profile is for"))
    else:
        out.append(Check("l4t", "ok", f"L4T {release}"))
    if model is None:
        out.append(Check("module", "refuse", f"{root / 'proc/device-tree/model'} names no Jetson module",
                         "--profile host"))
    elif profile == "jetson-nano" and ("nano" not in model.lower() or "orin" in model.lower()):
        out.append(Check("module", "refuse", f"module is '{model}', not a Jetson Nano", "--profile jetson-orin"))
    else:
        out.append(Check("module", "ok", model))
    return out


def check_disk(ctx: Context, todo: list[Step]) -> Check:
    names = {s.name for s in todo}
    need, what = 0, []
    if "gcc" in names and ctx.options.gcc_from is None:
        if gcc.phases_done(ctx):
            need += GCC_RESUME_BYTES
            what.append(f"the rest of GCC's build {_gib(GCC_RESUME_BYTES)}")
        else:
            need += GCC_BUILD_BYTES
            what.append(f"GCC's build tree {_gib(GCC_BUILD_BYTES)}")
    if names & {"llama-source", "build", "model"}:
        need += LLAMA_AND_MODEL_BYTES
        what.append(f"llama.cpp and the model {_gib(LLAMA_AND_MODEL_BYTES)}")
    where = ctx.options.build
    free = disk_free(where)
    if need and free < need:
        return Check(
            "disk", "refuse",
            f"only {_gib(free)} free under {where}; the remaining steps need {_gib(need)} ({', '.join(what)})",
            f"free {_gib(need - free)} on that file system (`sudo apt-get clean`, `docker system prune`, "
            f"remove old files: `du -xh {where.parent} | sort -h | tail`), or clone edgebench onto a larger disk",
        )
    return Check("disk", "ok", f"{_gib(free)} free under {where}" + (f" (need {_gib(need)})" if need else ""))


def memory(root: Path) -> tuple[int, int]:
    mem = meminfo(root)
    return mem.get("MemTotal", 0), mem.get("SwapTotal", 0)


def check_memory(ctx: Context, todo: list[Step], act: bool) -> Check:
    if not any(s.name == "gcc" for s in todo) or ctx.options.gcc_from is not None:
        ram, swap = memory(sysroot())
        return Check("memory", "ok", f"{_gib(ram)} RAM + {_gib(swap)} swap (no GCC build to run)")
    ram, swap = memory(sysroot())
    have = ram + swap
    if have >= GCC_MEM_SWAP_BYTES:
        return Check("memory", "ok", f"{_gib(ram)} RAM + {_gib(swap)} swap (GCC's build needs "
                                     f"{_gib(GCC_MEM_SWAP_BYTES)})")
    size_gib = max(2, math.ceil((GCC_MEM_SWAP_BYTES - have) / GIB))
    j = gcc.jobs(ctx.platform, ctx.options.jobs)
    detail = (f"{_gib(ram)} RAM + {_gib(swap)} swap; building GCC with make -j{j}"
              f" needs {_gib(GCC_MEM_SWAP_BYTES)} of memory + swap")
    if not ctx.options.make_swap:
        return Check("memory", "refuse", detail,
                     f"make bootstrap ARGS=--make-swap (adds a {size_gib} GiB swap file {SWAPFILE} with sudo, "
                     "active until reboot), or bring a compiler packed on another board: --gcc-from TARBALL")
    if not act:
        return Check("memory", "warn", detail + f"; --make-swap will add a {size_gib} GiB swap file {SWAPFILE}")
    make_swap(size_gib)
    ram, swap = memory(sysroot())
    return Check("memory", "ok", f"added a {size_gib} GiB swap file {SWAPFILE}: {_gib(ram)} RAM + {_gib(swap)} swap")


def swap_commands(size_gib: int) -> list[tuple[str, ...]]:
    return [
        sudo("fallocate", "-l", f"{size_gib}G", SWAPFILE),
        sudo("chmod", "600", SWAPFILE),
        sudo("mkswap", SWAPFILE),
        sudo("swapon", SWAPFILE),
    ]


def make_swap(size_gib: int) -> None:
    if disk_free(Path(SWAPFILE).parent) < size_gib * GIB:
        raise UserError(f"no room for a {size_gib} GiB swap file on the file system of {SWAPFILE}",
                        fix="free space on / or add swap yourself (`sudo swapon --show` lists it)")
    for argv in swap_commands(size_gib):
        rc, out = capture(argv)
        if rc != 0:
            raise UserError(f"`{' '.join(argv)}` failed: {out.strip()}",
                            fix=f"add {size_gib} GiB of swap by hand (see `man swapon`), then rerun make bootstrap")


def power_mode() -> tuple[str | None, str | None]:
    """(name, id) from `nvpmodel -q`: 'NV Power Mode: MAXN' then the id on the next line."""
    from orchestrator.sysinfo import parse_power_mode

    rc, out = capture(("nvpmodel", "-q"))
    mode = parse_power_mode(out) if rc == 0 else None
    if mode is None:
        return None, None
    return mode["mode"], None if mode["id"] is None else str(mode["id"])


def maxn_id(root: Path) -> str:
    """The id of the MAXN mode in /etc/nvpmodel.conf (0 on a Nano)."""
    try:
        text = (root / "etc/nvpmodel.conf").read_text(errors="replace")
    except OSError:
        return "0"
    m = re.search(r"POWER_MODEL\s+ID=(\d+)\s+NAME=MAXN\b", text)
    return m.group(1) if m else "0"


def check_power(ctx: Context, act: bool) -> Check:
    name, mode_id = power_mode()
    if name is None:
        return Check("power", "warn", "`nvpmodel -q` did not answer; the power mode is unknown",
                     "check that nvpmodel is installed (it comes with JetPack)")
    if name == "MAXN":
        return Check("power", "ok", f"power mode {name} (id {mode_id})")
    target = maxn_id(sysroot())
    if not ctx.options.max_power:
        return Check("power", "warn", f"power mode {name} (id {mode_id}): builds and benchmarks run slower than "
                     "in MAXN, and results record the mode", f"--max-power (runs `sudo nvpmodel -m {target}`)")
    if not act:
        return Check("power", "warn", f"power mode {name}; --max-power will switch to MAXN (nvpmodel -m {target})")
    rc, out = capture(sudo("nvpmodel", "-m", target))
    if rc != 0:
        raise UserError(f"`sudo nvpmodel -m {target}` failed: {out.strip()}",
                        fix="switch the power mode by hand (`sudo nvpmodel -m 0`) or drop --max-power")
    name, mode_id = power_mode()
    return Check("power", "ok", f"switched to power mode {name} (id {mode_id})")


def check_sudo(ctx: Context, todo: list[Step]) -> Check:
    needers = [s.name for s in todo if s.needs_sudo]
    if ctx.options.make_swap:
        needers.append("--make-swap")
    if ctx.options.max_power:
        needers.append("--max-power")
    if not needers:
        return Check("sudo", "ok", "no remaining step needs root")
    rc, out = capture(sudo("true"), timeout=20)
    if rc == 0:
        return Check("sudo", "ok", f"`sudo -n` works (for {', '.join(needers)})")
    need = f"{', '.join(needers)} need{'s' if len(needers) == 1 else ''} root"
    if rc == 127:
        return Check("sudo", "refuse", f"{need}, and sudo is not installed",
                     "install sudo and add yourself to group sudo (JetPack's first-boot user is in it)")
    return Check(
        "sudo", "refuse",
        f"{need}, and sudo wants a password that an unattended run cannot type",
        "run `sudo -v` (enter your password), then `make bootstrap` within 15 minutes: the steps that need "
        "root run first, before the long GCC build",
    )


def check_network(ctx: Context, todo: list[Step]) -> list[Check]:
    out = []
    for step in todo:
        for urls, what in step.urls(ctx):
            alternatives = (urls,) if isinstance(urls, str) else urls
            errors = []
            for url in alternatives:
                try:
                    net.probe(url)
                    out.append(Check("network", "ok", f"{url} answers ({what}, step {step.name})"))
                    break
                except net.Unreachable as exc:
                    errors.append(f"{url}: {exc}")
            else:
                # the probe went the way the download will: through the proxy the environment names, if any
                fix = "check the network (cable, Wi-Fi, proxy: export https_proxy=...), then rerun make bootstrap"
                if any(net.proxy_for(u) for u in alternatives):
                    fix = ("check the proxy that https_proxy/http_proxy names (or list the host in no_proxy), then "
                           "rerun make bootstrap")
                if step.name == "gcc":
                    fix += "; or skip the download and the build: --gcc-from TARBALL packed on another board"
                out.append(Check("network", "refuse", f"{'; '.join(errors)} ({what}, step {step.name})", fix))
    return out


CMAKE_FIX = "apt install cmake (as root; or sudo apt install cmake), then rerun the bootstrap"


def check_cmake(todo: list[Step]) -> Check | None:
    """Today's llama.cpp (step llama-current) builds with CMake only; None when no step needs it."""
    if not any(s.name == "llama-current" for s in todo):
        return None
    found = shutil.which("cmake")
    if found is None:
        return Check("cmake", "refuse", "the llama-current step builds with CMake, and there is no cmake on PATH",
                     CMAKE_FIX)
    return Check("cmake", "ok", found)


def require_cmake() -> None:
    from orchestrator.bootstrap.llama_current import LlamaCurrent

    enforce([check_cmake([LlamaCurrent()])])


def host_checks(ctx: Context, todo: list[Step]) -> list[Check]:
    """On a host (no board preflight): before anything slow, what the llama-current step needs,
    CMake and its sdist (cached, or PyPI answering), so that it fails before the a33e6a0 build."""
    current = [s for s in todo if s.name == "llama-current"]
    if not current:
        return []
    return [check_cmake(current), *check_network(ctx, current)]


def run(ctx: Context, todo: list[Step], act: bool = True) -> list[Check]:
    """All checks. With act, --make-swap and --max-power do what they say (after sudo is known to work)."""
    checks = check_board(ctx)
    checks.append(check_disk(ctx, todo))
    sudo_check = check_sudo(ctx, todo)
    checks.append(sudo_check)
    can_act = act and sudo_check.level == "ok" and not any(c.level == "refuse" for c in checks)
    checks.append(check_memory(ctx, todo, can_act))
    checks.append(check_power(ctx, can_act))
    checks.extend(check_network(ctx, todo))
    cmake = check_cmake(todo)
    if cmake:
        checks.append(cmake)
    return checks


def enforce(checks: list[Check]) -> None:
    refused = [c for c in checks if c.level == "refuse"]
    if not refused:
        return
    if len(refused) == 1:
        c = refused[0]
        raise UserError(f"preflight ({c.check}): {c.detail}", fix=c.fix)
    lines = [f"preflight refused {len(refused)} things:"]
    for c in refused:
        lines += [f"  - {c.check}: {c.detail}", f"    fix: {c.fix}"]
    raise UserError("\n".join(lines), fix="the fixes above (or --skip-preflight, at your own risk)")


def as_records(checks: list[Check]) -> list[dict]:
    return [asdict(c) for c in checks]
