"""Sysfs sampler: the GPU devfreq `load` file, the GPU clock, the INA3221 power rails and the
thermal zones, read directly, for 10 ms sampling where jtop (a service over a socket) is too slow.

Files are opened once per run and re-read with pread at offset 0, which sysfs supports and which
costs one syscall a file instead of three. Paths are looked up under EDGEBENCH_SYSROOT so tests
hand in a fake board:

- GPU: the devfreq device whose `device/load` exists (`/sys/class/devfreq/57000000.gpu` on a Nano,
  `load` per mille, `cur_freq`/`max_freq` in Hz).
- Rails, L4T 32 (Nano): `/sys/bus/i2c/drivers/ina3221x/*/iio:device*/rail_name_N` with
  `in_power N_input` in mW. L4T 35+ (Orin): `/sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*/inN_label`
  with `inN_input` (mV) and `currN_input` (mA); labels `NC` are unconnected channels.
- Per-process GPU memory: debugfs `/sys/kernel/debug/nvmap/iovmm/clients` (root only; absent
  otherwise, and then so is `gpu_mem_proc_bytes`).

How often the driver refreshes `load` is measured, not assumed: every change of its value is
timed, and `info()` gives the median time between changes (`load_refresh_s`). A refresh that
writes the same value goes unseen, so this is an upper bound on the real period.
"""

from __future__ import annotations

import os
import re
import statistics
import time
from pathlib import Path

from orchestrator import fields as F

from ..sysinfo import sysroot
from .polling import PollingSampler
from .tegrastats_format import INPUT_RAILS

_CLIENT = re.compile(r"^\s*\S+\s+\S+\s+(\d+)\s+(\d+)([KMG]?)\s*$")
_TOTAL = re.compile(r"^\s*total\s+(\d+)([KMG]?)\s*$")
_UNIT = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def find_gpu(root: Path) -> dict | None:
    """{'load', 'cur_freq', 'max_freq'} paths of the integrated GPU's devfreq node, or None."""
    for node in sorted((root / "sys/class/devfreq").glob("*")):
        load = node / "device" / "load"
        if load.is_file():
            return {"load": load, "cur_freq": node / "cur_freq", "max_freq": node / "max_freq"}
    for rel in ("sys/devices/gpu.0/load", "sys/devices/platform/gpu.0/load", "sys/devices/17000000.ga10b/load",
                "sys/devices/platform/17000000.ga10b/load"):
        if (root / rel).is_file():
            return {"load": root / rel}
    return None


def find_rails(root: Path) -> dict[str, dict[str, Path]]:
    """rail name -> {'power'} (mW, L4T 32) or {'volt', 'curr'} (mV and mA, L4T 35+)."""
    rails: dict[str, dict[str, Path]] = {}
    for name_file in sorted(root.glob("sys/bus/i2c/drivers/ina3221x/*/iio:device*/rail_name_*")):
        n = name_file.name.rsplit("_", 1)[1]
        power = name_file.parent / f"in_power{n}_input"
        if power.is_file():
            rails[_read_text(name_file)] = {"power": power}
    for label in sorted(root.glob("sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*/in*_label")):
        name = _read_text(label)
        n = label.name[2:-len("_label")]
        volt, curr = label.parent / f"in{n}_input", label.parent / f"curr{n}_input"
        if name and "NC" not in name and volt.is_file() and curr.is_file():
            rails[name] = {"volt": volt, "curr": curr}
    return rails


def find_thermal(root: Path) -> dict[str, Path]:
    zones = {}
    for zone in sorted(root.glob("sys/class/thermal/thermal_zone*")):
        kind = _read_text(zone / "type")
        if kind and (zone / "temp").is_file():
            zones[re.sub(r"\W+", "_", kind.lower().removesuffix("-therm"))] = zone / "temp"
    return zones


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", "replace").strip("\x00\n ")
    except OSError:
        return ""


def parse_nvmap_clients(text: str, pid: int) -> tuple[int | None, int | None]:
    """(bytes the PID holds, total) from debugfs nvmap `clients` (`user process PID SIZE[K]` lines)."""
    mine, total = None, None
    for line in text.splitlines():
        m = _CLIENT.match(line)
        if m and int(m.group(1)) == pid:
            mine = (mine or 0) + int(m.group(2)) * _UNIT[m.group(3)]
            continue
        m = _TOTAL.match(line)
        if m:
            total = int(m.group(1)) * _UNIT[m.group(2)]
    return mine, total


class SysfsSampler(PollingSampler):
    name = "sysfs"

    def __init__(self, interval_s: float, root: Path | None = None):
        super().__init__(interval_s)
        self.root = Path(root) if root is not None else sysroot()
        self._fds: dict[str, int] = {}
        self._rails: dict[str, dict[str, str]] = {}
        self._temps: dict[str, str] = {}
        self._input_rail: str | None = None
        self._load_prev: int | None = None
        self._load_changed_ns: int | None = None
        self._load_gaps_ns: list[int] = []
        self._opened = False

    def available(self) -> str | None:
        """None when this board has a GPU load file, else why not."""
        return None if find_gpu(self.root) else f"no GPU devfreq load file under {self.root}/sys"

    def open(self) -> None:
        if self._opened:
            return
        gpu = find_gpu(self.root)
        if gpu is None:
            raise RuntimeError(self.available())
        self._open_fd("gpu_load", gpu["load"])
        for key in ("cur_freq", "max_freq"):
            if key in gpu and gpu[key].is_file():
                self._open_fd(f"gpu_{key}", gpu[key])
        for rail, paths in find_rails(self.root).items():
            self._rails[rail] = {}
            for kind, path in paths.items():
                self._open_fd(f"rail:{rail}:{kind}", path)
                self._rails[rail][kind] = f"rail:{rail}:{kind}"
        for zone, path in find_thermal(self.root).items():
            self._open_fd(f"temp:{zone}", path)
            self._temps[zone] = f"temp:{zone}"
        if not self._rails:
            self.warn("no INA3221 power rails found: no power or energy figures")
        # Decided once: a reading that misses the input rail has no total, rather than the sum of the others.
        self._input_rail = next((r for r in INPUT_RAILS if r in self._rails), None)
        self._nvmap = self.root / "sys/kernel/debug/nvmap/iovmm/clients"
        if not os.access(self._nvmap, os.R_OK):
            self._nvmap = None
            self.warn("debugfs nvmap clients not readable (needs root): no per-process GPU memory")
        self._opened = True

    def _open_fd(self, key: str, path: Path) -> None:
        try:
            self._fds[key] = os.open(path, os.O_RDONLY)
        except OSError as exc:
            self.warn(f"cannot open {path}: {exc.strerror}")

    def close(self) -> None:
        super().close()
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        self._opened = False

    def start(self, pid: int, t0_ns: int) -> None:
        # Load changes are timed within a query only: the gap between two queries is no refresh period.
        self._load_changed_ns = None
        self._load_prev = None
        super().start(pid, t0_ns)

    def _int(self, key: str) -> int | None:
        fd = self._fds.get(key)
        if fd is None:
            return None
        raw = os.pread(fd, 32, 0).strip()
        return int(raw) if raw.lstrip(b"-").isdigit() else None

    def _read(self, pid: int) -> dict | None:
        now = time.perf_counter_ns()
        out: dict = {}
        load = self._int("gpu_load")
        if load is not None:
            out[F.GPU_LOAD_PCT] = load / 10.0
            self._note_load(load, now)
        cur = self._int("gpu_cur_freq")
        if cur is not None:
            out[F.GPU_FREQ_MHZ] = round(cur / 1e6, 3)
        top = self._int("gpu_max_freq")
        if top is not None:
            out[F.GPU_FREQ_MAX_MHZ] = round(top / 1e6, 3)
        rails = {}
        for rail, keys in self._rails.items():
            if "power" in keys:
                mw = self._int(keys["power"])
            else:
                mv, ma = self._int(keys["volt"]), self._int(keys["curr"])
                mw = None if mv is None or ma is None else mv * ma // 1000
            if mw is not None:
                rails[rail] = mw
                out[f"power_{rail.lower()}_mw"] = mw
        if self._input_rail is not None:
            if self._input_rail in rails:
                out[F.POWER_TOTAL_MW] = rails[self._input_rail]
        elif rails and len(rails) == len(self._rails):
            out[F.POWER_TOTAL_MW] = sum(rails.values())
        for zone, key in self._temps.items():
            milli = self._int(key)
            out[f"temp_{zone}_c"] = None if milli is None or milli <= -256000 else milli / 1000.0
        if self._nvmap is not None:
            try:
                mine, total = parse_nvmap_clients(self._nvmap.read_text(), pid)
            except OSError:
                mine = total = None
            if mine is not None:
                out[F.GPU_MEM_PROC_BYTES] = mine
            if total is not None:
                out[F.RAM_SHARED_BYTES] = total
        return out

    def _note_load(self, load: int, now: int) -> None:
        if self._load_prev is not None and load != self._load_prev:
            if self._load_changed_ns is not None:
                self._load_gaps_ns.append(now - self._load_changed_ns)
            self._load_changed_ns = now
        self._load_prev = load

    def load_refresh_s(self) -> float | None:
        return round(statistics.median(self._load_gaps_ns) / 1e9, 6) if self._load_gaps_ns else None

    def info(self) -> dict:
        return {**super().info(), "load_refresh_s": self.load_refresh_s(), "load_changes": len(self._load_gaps_ns),
                "rails": sorted(self._rails), "root": str(self.root)}
