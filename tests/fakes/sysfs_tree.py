"""A fake Jetson sysfs tree (for EDGEBENCH_SYSROOT) and a writer thread that plays a recorded trace
into it, the way the GPU driver and the INA3221 driver refresh their files.

Layouts follow L4T 32 on a Nano (devfreq 57000000.gpu, ina3221x iio rails in mW) and L4T 35 on an
Orin (hwmon ina3221 with mV and mA). Frames are dicts: gpu_load_permille, gpu_freq_hz, rails {name: mW},
temps_milli {zone type: m°C}; the writer changes the files every `period_s`.
"""

from __future__ import annotations

import threading
from pathlib import Path

NANO_RAILS = ("POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU")
NANO_ZONES = ("AO-therm", "CPU-therm", "GPU-therm", "PLL-therm", "PMIC-Die", "thermal-fan-est")
MAX_FREQ_HZ = 921600000

# A 4-frame trace: idle, prefill-like, decode at full clock, decode throttled.
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


def _w(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


class NanoSysfs:
    """Files of a Nano under `root`; `apply(frame)` writes one frame."""

    def __init__(self, root: Path, nvmap_clients: str | None = None):
        self.root = Path(root)
        dev = self.root / "sys/class/devfreq/57000000.gpu"
        self.load = dev / "device/load"
        self.cur_freq = dev / "cur_freq"
        _w(dev / "max_freq", str(MAX_FREQ_HZ))
        _w(dev / "min_freq", "76800000")
        _w(dev / "governor", "nvhost_podgov")
        iio = self.root / "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0"
        self.rails = {}
        for n, name in enumerate(NANO_RAILS):
            _w(iio / f"rail_name_{n}", name)
            self.rails[name] = iio / f"in_power{n}_input"
        self.zones = {}
        for n, zone in enumerate(NANO_ZONES):
            zdir = self.root / f"sys/class/thermal/thermal_zone{n}"
            _w(zdir / "type", zone)
            self.zones[zone] = zdir / "temp"
            _w(zdir / "temp", "40000")
        _w(self.zones["PMIC-Die"], "100000")
        if nvmap_clients is not None:
            _w(self.root / "sys/kernel/debug/nvmap/iovmm/clients", nvmap_clients)
        self.apply(NANO_FRAMES[0])

    def apply(self, frame: dict) -> None:
        _w(self.load, str(frame["gpu_load_permille"]))
        _w(self.cur_freq, str(frame["gpu_freq_hz"]))
        for name, mw in frame["rails"].items():
            _w(self.rails[name], str(mw))
        for zone, milli in frame["temps_milli"].items():
            _w(self.zones[zone], str(milli))


class OrinSysfs:
    """An Orin's hwmon INA3221 (mV, mA; an unconnected `NC` channel) and its GPU devfreq node."""

    def __init__(self, root: Path):
        self.root = Path(root)
        dev = self.root / "sys/class/devfreq/17000000.ga10b"
        _w(dev / "device/load", "940")
        _w(dev / "cur_freq", "1300500000")
        _w(dev / "max_freq", "1300500000")
        hw = self.root / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"
        for n, (label, mv, ma) in enumerate([("VDD_GPU_SOC", 5000, 2000), ("VDD_CPU_CV", 5000, 400),
                                             ("VIN_SYS_5V0", 5000, 1000), ("NC", 0, 0)], start=1):
            _w(hw / f"in{n}_label", label)
            _w(hw / f"in{n}_input", str(mv))
            _w(hw / f"curr{n}_input", str(ma))


class TraceWriter:
    """Plays `frames` into `board` every `period_s` in a thread, cycling, until `close()`."""

    def __init__(self, board: NanoSysfs, frames: list[dict], period_s: float):
        self.board, self.frames, self.period_s = board, frames, period_s
        self._quit = threading.Event()
        self.writes = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        i = 0
        while not self._quit.wait(self.period_s):
            i = (i + 1) % len(self.frames)
            self.board.apply(self.frames[i])
            self.writes += 1

    def close(self) -> None:
        self._quit.set()
        self._thread.join(timeout=5)
