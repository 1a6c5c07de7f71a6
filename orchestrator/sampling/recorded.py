"""The recorded Nano: input that every GPU/board sampler reads as on a Jetson Nano (L4T 32), for
`make bench`'s sampler cost (cost.py) and the tests. What is recorded ships as package data under
orchestrator/data/recorded/, so an installed wheel measures the same input as a checkout:

    tegrastats/*.txt     lines of each tegrastats format (README.md there says which is which)
    bin/tegrastats       a stand-in tegrastats that prints a file's lines, one per --interval
    modules/jtop/        a stand-in jtop client (jetson-stats 4.3.2's attributes and units)

The sysfs side is a tree of files under a scratch root (EDGEBENCH_SYSROOT), written here in the
Nano's layout and rewritten from NANO_FRAMES the way its drivers refresh them.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import tempfile
import threading
from pathlib import Path

from orchestrator.envvars import environ
from orchestrator.packaged import data_path

NANO_RAILS = ("POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU")
NANO_ZONES = ("AO-therm", "CPU-therm", "GPU-therm", "PLL-therm", "PMIC-Die", "thermal-fan-est")
MAX_FREQ_HZ = 921600000

# The sysfs trace, 4 frames: idle, prefill-like, decode at full clock, decode throttled. A frame
# holds gpu_load_permille, gpu_freq_hz, rails {name: mW} and temps_milli {zone type: m°C}.
NANO_FRAMES = [
    {"gpu_load_permille": 0, "gpu_freq_hz": 76800000, "rails": {"POM_5V_IN": 1000, "POM_5V_GPU": 0, "POM_5V_CPU": 200},
     "temps_milli": {"GPU-therm": 41000, "CPU-therm": 40500}},
    {"gpu_load_permille": 500, "gpu_freq_hz": 614400000,
     "rails": {"POM_5V_IN": 3000, "POM_5V_GPU": 1000, "POM_5V_CPU": 900},
     "temps_milli": {"GPU-therm": 43000, "CPU-therm": 42000}},
    {"gpu_load_permille": 990, "gpu_freq_hz": MAX_FREQ_HZ,
     "rails": {"POM_5V_IN": 5000, "POM_5V_GPU": 2000, "POM_5V_CPU": 1500},
     "temps_milli": {"GPU-therm": 47500, "CPU-therm": 45000}},
    {"gpu_load_permille": 990, "gpu_freq_hz": 614400000,
     "rails": {"POM_5V_IN": 4000, "POM_5V_GPU": 1500, "POM_5V_CPU": 1200},
     "temps_milli": {"GPU-therm": 52000, "CPU-therm": 48000}},
]


def tegrastats_lines(name: str = "nano_root.txt") -> Path:
    return data_path("recorded", "tegrastats", name)


def tegrastats_program() -> Path:
    return data_path("recorded", "bin", "tegrastats")


def modules_dir() -> Path:
    """The folder to put on sys.path (or PYTHONPATH) for the stand-in `jtop` module."""
    return data_path("recorded", "modules")


# Every node holds this many bytes: its value, a newline, then newlines.
NODE_BYTES = 32


def write_node(path: Path, text: str) -> None:
    """One sysfs file as a driver shows it: the value and a newline (padded with newlines to a fixed
    size). A driver's node always reads whole; a regular file does not. Truncating first let a
    sampler's read land between truncate and write and see nothing (a reading with no GPU
    temperature, once in three loaded CI passes), and a file that grows can be read with its old
    size and new bytes ("12" of "123456"). So a node never changes size and is rewritten in place
    (replacing the file would hide new values from a sampler that keeps it open and preads it)."""
    data = (text + "\n").encode()
    data += b"\n" * (NODE_BYTES - len(data))
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    try:
        os.pwrite(fd, data, 0)
    finally:
        os.close(fd)


class NanoSysfs:
    """A Nano's files under `root` (devfreq 57000000.gpu, ina3221x iio rails in mW, thermal
    zones, debugfs nvmap clients when given); `apply(frame)` writes one frame."""

    def __init__(self, root: Path, nvmap_clients: str | None = None):
        self.root = Path(root)
        dev = self.root / "sys/class/devfreq/57000000.gpu"
        self.load = dev / "device/load"
        self.cur_freq = dev / "cur_freq"
        write_node(dev / "max_freq", str(MAX_FREQ_HZ))
        write_node(dev / "min_freq", "76800000")
        write_node(dev / "governor", "nvhost_podgov")
        iio = self.root / "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0"
        self.rails = {}
        for n, name in enumerate(NANO_RAILS):
            write_node(iio / f"rail_name_{n}", name)
            self.rails[name] = iio / f"in_power{n}_input"
        self.zones = {}
        for n, zone in enumerate(NANO_ZONES):
            zdir = self.root / f"sys/class/thermal/thermal_zone{n}"
            write_node(zdir / "type", zone)
            self.zones[zone] = zdir / "temp"
            write_node(zdir / "temp", "40000")
        write_node(self.zones["PMIC-Die"], "100000")
        if nvmap_clients is not None:
            write_node(self.root / "sys/kernel/debug/nvmap/iovmm/clients", nvmap_clients)
        self.apply(NANO_FRAMES[0])

    def apply(self, frame: dict) -> None:
        write_node(self.load, str(frame["gpu_load_permille"]))
        write_node(self.cur_freq, str(frame["gpu_freq_hz"]))
        for name, mw in frame["rails"].items():
            write_node(self.rails[name], str(mw))
        for zone, milli in frame["temps_milli"].items():
            write_node(self.zones[zone], str(milli))


class TraceWriter:
    """Plays `frames` into `board` every `period_s` in a thread, cycling, until `close()`."""

    def __init__(self, board: NanoSysfs, frames: list[dict], period_s: float):
        self.board, self.frames, self.period_s = board, frames, period_s
        self._quit = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        i = 0
        while not self._quit.wait(self.period_s):
            i = (i + 1) % len(self.frames)
            self.board.apply(self.frames[i])

    def close(self) -> None:
        self._quit.set()
        self._thread.join(timeout=5)


@contextlib.contextmanager
def nano(period_s: float = 0.05, gpu_comms: str = "sleep"):
    """While the block runs, every GPU/board sampler of this process reads the recorded Nano: the
    sysfs tree rewritten every `period_s`, the stand-in tegrastats and the stand-in jtop, whose
    process table lists the processes named `gpu_comms` (a query's child). Afterwards the `jtop`
    module is forgotten, so nothing later in this process samples a board that is not there."""
    modules = str(modules_dir())
    sys.path.insert(0, modules)
    sys.modules.pop("jtop", None)
    with tempfile.TemporaryDirectory(prefix="edgebench-recorded-") as tmp:
        # Run through this Python: an install may not have kept the program's executable bit.
        program = Path(tmp) / "tegrastats"
        argv = " ".join(shlex.quote(str(x)) for x in (sys.executable, tegrastats_program()))
        program.write_text(f'#!/bin/sh\nexec {argv} "$@"\n')
        program.chmod(0o755)
        writer = TraceWriter(NanoSysfs(Path(tmp) / "root"), NANO_FRAMES, period_s=period_s)
        try:
            with environ(EDGEBENCH_SYSROOT=str(Path(tmp) / "root"), EDGEBENCH_TEGRASTATS=str(program),
                         FAKE_TEGRASTATS_LINES=str(tegrastats_lines()), FAKE_JTOP_SERVICE="active",
                         FAKE_JTOP_GPU_COMMS=gpu_comms):
                yield Path(tmp) / "root"
        finally:
            writer.close()
            sys.modules.pop("jtop", None)
            sys.path.remove(modules)
