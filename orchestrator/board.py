"""The board's state around a run: power mode, clocks and their caps, temperatures, swap, and the
versions of the Python packages measuring it. Read at a run's start and finish, so a report can
tell a slow query from a capped or hot board.

Every reading is best effort: a file or program that is missing (a laptop has no nvpmodel, a VM
no cpufreq) reads "unavailable", never an exception. Files are read under EDGEBENCH_SYSROOT.

`jetson_clocks` is inferred, not asked: `jetson_clocks --show` needs root, and what the script does
is pin every online CPU's and the GPU's minimum clock to the maximum, which sysfs shows to anyone.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
from pathlib import Path

from orchestrator.sampling.sysfs import find_gpu, find_thermal
from orchestrator.sysinfo import meminfo, parse_power_mode, sysroot

UNAVAILABLE = "unavailable"
PACKAGES = ("edgebench", "click", "pexpect", "ptyprocess", "psutil", "jinja2", "gguf", "numpy", "PyYAML", "filelock",
            "jetson-stats", "nvidia-ml-py")
MAX_POWER_FIX = "edgebench bootstrap --max-power  (or: sudo nvpmodel -m 0)"
CLOCKS_FIX = "sudo jetson_clocks"


def _int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def nvpmodel() -> dict | str:
    """{'mode': 'MAXN', 'id': 0} from `nvpmodel -q`."""
    exe = shutil.which("nvpmodel")
    if not exe:
        return UNAVAILABLE
    try:
        out = subprocess.run([exe, "-q"], capture_output=True, text=True, timeout=15).stdout
    except (OSError, subprocess.TimeoutExpired):
        return UNAVAILABLE
    return parse_power_mode(out) or UNAVAILABLE


def cpu_clocks(root: Path) -> list[dict] | str:
    cores = []
    for cpu in sorted((root / "sys/devices/system/cpu").glob("cpu[0-9]*"), key=lambda p: int(p.name[3:])):
        online = _text(cpu / "online")
        core: dict = {"cpu": int(cpu.name[3:]), "online": online != "0"}
        freq = cpu / "cpufreq"
        if core["online"] and freq.is_dir():
            core["governor"] = _text(freq / "scaling_governor")
            for key, name in (("scaling_cur_freq", "cur_mhz"), ("cpuinfo_max_freq", "max_mhz"),
                              ("scaling_max_freq", "cap_mhz"), ("scaling_min_freq", "floor_mhz")):
                khz = _int(freq / key)
                core[name] = None if khz is None else khz / 1000
        cores.append(core)
    return cores or UNAVAILABLE


def gpu_clock(root: Path) -> dict | str:
    gpu = find_gpu(root)
    if not gpu or "max_freq" not in gpu:
        return UNAVAILABLE
    node = gpu["max_freq"].parent
    out: dict = {"governor": _text(node / "governor")}
    for key in ("cur_freq", "max_freq", "min_freq"):
        hz = _int(node / key)
        out[key.replace("_freq", "_mhz")] = None if hz is None else hz / 1e6
    avail = _text(node / "available_frequencies")
    if avail:
        out["available_max_mhz"] = max(int(x) for x in avail.split()) / 1e6
    return out


def emc_clock(root: Path) -> dict | str:
    # debugfs, root only: the Nano's clock tree, then the Orin's BPMP.
    for rel in ("sys/kernel/debug/clk/emc/clk_rate", "sys/kernel/debug/bpmp/debug/clk/emc/rate"):
        hz = _int(root / rel)
        if hz is not None:
            return {"cur_mhz": hz / 1e6}
    return UNAVAILABLE


def thermal(root: Path) -> dict | str:
    temps = {}
    for zone, path in find_thermal(root).items():
        milli = _int(path)
        if milli is not None and milli > -256000:
            temps[zone] = milli / 1000
    return temps or UNAVAILABLE


def swap_used(root: Path) -> int | str:
    mem = meminfo(root)
    if "SwapTotal" not in mem or "SwapFree" not in mem:
        return UNAVAILABLE
    return mem["SwapTotal"] - mem["SwapFree"]


def packages() -> dict:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _caps(cpus, gpu) -> list[str]:
    caps = []
    for c in cpus if isinstance(cpus, list) else []:
        if c.get("cap_mhz") and c.get("max_mhz") and c["cap_mhz"] < c["max_mhz"]:
            caps.append(f"cpu{c['cpu']} capped at {c['cap_mhz']:g} of {c['max_mhz']:g} MHz")
    if isinstance(gpu, dict) and gpu.get("max_mhz") and gpu.get("available_max_mhz") \
            and gpu["max_mhz"] < gpu["available_max_mhz"]:
        caps.append(f"GPU capped at {gpu['max_mhz']:g} of {gpu['available_max_mhz']:g} MHz")
    return caps


def _jetson_clocks(cpus, gpu) -> bool | str:
    online = [c for c in cpus if c.get("online") and c.get("floor_mhz")] if isinstance(cpus, list) else []
    if not online or not isinstance(gpu, dict) or gpu.get("min_mhz") is None:
        return UNAVAILABLE
    return all(c["floor_mhz"] == c["cap_mhz"] for c in online) and gpu["min_mhz"] == gpu["max_mhz"]


def read_board_state() -> dict:
    root = sysroot()
    cpus, gpu = cpu_clocks(root), gpu_clock(root)
    readable = isinstance(cpus, list) and any("cap_mhz" in c for c in cpus) or isinstance(gpu, dict)
    caps = _caps(cpus, gpu)
    return {
        "nvpmodel": nvpmodel(),
        "jetson_clocks": _jetson_clocks(cpus, gpu),
        "cpu": cpus,
        "gpu_clock": gpu,
        "emc_clock": emc_clock(root),
        "thermal_c": thermal(root),
        "swap_used_bytes": swap_used(root),
        "throttled": bool(caps) if readable else UNAVAILABLE,
        "throttle_reasons": caps,
        "packages": packages(),
    }


def board_warnings(state: dict) -> list[str]:
    """One line per condition that makes the figures those of a slowed board, each naming its fix."""
    warnings = []
    nvp = state.get("nvpmodel")
    if isinstance(nvp, dict) and "MAXN" not in nvp["mode"].upper() and nvp.get("id") != 0:
        warnings.append(f"power mode {nvp['mode']} (id {nvp['id']}) is not the maximum: clocks are capped. "
                        f"fix: {MAX_POWER_FIX}")
    if state.get("throttled") is True:
        warnings.append(f"clocks are below their maximum ({'; '.join(state['throttle_reasons'])}). "
                        f"fix: {CLOCKS_FIX}")
    return warnings
