"""What machine this is: CPU, memory, disk, Python, and on a Jetson the module, L4T release
and power mode. File reads go through a root folder so tests can hand in a fake board."""

from __future__ import annotations

import os
import platform as _platform
import re
import shutil
import subprocess
import sys
from pathlib import Path


def sysroot() -> Path:
    return Path(os.environ.get("EDGEBENCH_SYSROOT", "/"))


def _read(root: Path, rel: str) -> str | None:
    try:
        return (root / rel).read_bytes().decode("utf-8", "replace").rstrip("\x00\n ")
    except OSError:
        return None


def _cpu_model(root: Path) -> str:
    text = _read(root, "proc/cpuinfo") or ""
    for key in ("model name", "Hardware", "Processor"):
        m = re.search(rf"^{key}\s*:\s*(.+)$", text, re.M)
        if m:
            return m.group(1).strip()
    return _platform.processor() or _platform.machine()


def meminfo(root: Path) -> dict:
    out = {}
    for line in (_read(root, "proc/meminfo") or "").splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[name] = int(parts[0]) * 1024
    return out


def l4t_release(root: Path) -> str | None:
    """'32.7.1' from `# R32 (release), REVISION: 7.1, ...` in /etc/nv_tegra_release."""
    text = _read(root, "etc/nv_tegra_release")
    m = re.search(r"R(\d+) \(release\), REVISION: ([\d.]+)", text or "")
    return f"{m.group(1)}.{m.group(2)}" if m else None


def jetson_model(root: Path) -> str | None:
    model = _read(root, "proc/device-tree/model")
    return model if model and "jetson" in model.lower() else None


def parse_power_mode(text: str) -> dict | None:
    """{'mode': 'MAXN', 'id': 0} from `nvpmodel -q` ('NV Power Mode: MAXN' then the id on the
    next line; id None when that line is missing), None when it names no mode."""
    m = re.search(r"NV Power Mode:\s*(\S+)(?:\s*\n\s*(\d+))?", text or "")
    if not m:
        return None
    return {"mode": m.group(1), "id": int(m.group(2)) if m.group(2) else None}


def nvcc_version() -> str | None:
    nvcc = shutil.which("nvcc") or ("/usr/local/cuda/bin/nvcc" if Path("/usr/local/cuda/bin/nvcc").exists() else None)
    if not nvcc:
        return None
    try:
        out = subprocess.run([nvcc, "--version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"release ([\d.]+)", out)
    return m.group(1) if m else None


def existing_parent(path: Path) -> Path:
    """`path`, or its nearest parent that exists (a root not made yet still has a disk)."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def profile_for(info: dict) -> str:
    model = (info.get("jetson_model") or "").lower()
    if "nano" in model and "orin" not in model:
        return "jetson-nano"
    if model:
        return "jetson-orin"
    return "host"


def detect(disk_path: Path | None = None) -> dict:
    root = sysroot()
    mem = meminfo(root)
    disk = shutil.disk_usage(existing_parent(disk_path or Path.cwd()))
    info = {
        "system": _platform.system(),
        "machine": _platform.machine(),
        "kernel": _platform.release(),
        "hostname": _platform.node(),
        "cpu_model": _cpu_model(root),
        "cpu_count": os.cpu_count() or 1,
        "mem_total_bytes": mem.get("MemTotal"),
        "mem_available_bytes": mem.get("MemAvailable"),
        "swap_total_bytes": mem.get("SwapTotal"),
        "disk_free_bytes": disk.free,
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "jetson_model": jetson_model(root),
        "l4t_release": l4t_release(root),
        "cuda_version": nvcc_version(),
    }
    info["profile"] = profile_for(info)
    return info
