"""Fake `jtop` client with the attribute shapes and units of jetson-stats 4.3.2, written for the
tests from its documented interface (jtop/jtop.py and jtop/core/*.py at 4.3.2); no code is copied.

What it mimics:
- `jtop(interval)` connects on `start()`; the service's interval is set by the first client, so
  `interval` is FAKE_JTOP_SERVICE_INTERVAL when set (another client came first), else the asked one;
  `interval_user` is always the asked one.
- `start()` raises JtopException "The jtop.service is not active..." unless FAKE_JTOP_SERVICE=active,
  and "Mismatch version jtop service: [..] and client: [..]" when FAKE_JTOP_SERVICE_VERSION differs
  in major.minor.
- A thread refreshes the stats every service interval from FAKE_JTOP_TRACE (a JSON list of frames)
  or the built-in frames, then calls every attached observer with the client, as 4.3.2 does.
- Units: GPU load in %, clocks in kHz, memory in kB, power in mW, temperatures in C; process rows
  `[pid, user, gpu, type, priority, state, cpu%, rss (pages), gpu_mem (kB), name]` for every running
  process whose name is in FAKE_JTOP_GPU_COMMS (default `main`, llama.cpp's binary).
"""

from __future__ import annotations

import json
import os
import threading

__version__ = "4.3.2"

FRAMES = [
    {"gpu_load": 0.0, "gpu_khz": 76800, "ram_used_kb": 900000, "ram_shared_kb": 20000, "gpu_mem_kb": 0,
     "power": {"POM_5V_IN": 1000, "POM_5V_GPU": 0, "POM_5V_CPU": 200}, "temps": {"GPU": 41.0, "CPU": 40.5}},
    {"gpu_load": 60.0, "gpu_khz": 921600, "ram_used_kb": 1500000, "ram_shared_kb": 420000, "gpu_mem_kb": 380000,
     "power": {"POM_5V_IN": 4000, "POM_5V_GPU": 1800, "POM_5V_CPU": 900}, "temps": {"GPU": 45.0, "CPU": 43.0}},
    {"gpu_load": 99.0, "gpu_khz": 921600, "ram_used_kb": 1510000, "ram_shared_kb": 430000, "gpu_mem_kb": 390000,
     "power": {"POM_5V_IN": 6000, "POM_5V_GPU": 2600, "POM_5V_CPU": 1100}, "temps": {"GPU": 49.5, "CPU": 45.0}},
]
GPU_MAX_KHZ = 921600


class JtopException(Exception):
    pass


class NVPModel:
    def __init__(self, name: str, id_: int):
        self._name, self._id = name, id_

    @property
    def name(self):
        return self._name

    @property
    def id(self):
        return self._id

    def __repr__(self):
        return self._name


class JetsonClocks:
    def __init__(self, enable: bool):
        self._enable = enable

    @property
    def status(self):
        return "running" if self._enable else "inactive"

    def __bool__(self):
        return self._enable


def _gpu_rows(frame: dict) -> list:
    comms = set(os.environ.get("FAKE_JTOP_GPU_COMMS", "main").split(","))
    rows = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
            if comm not in comms:
                continue
            with open(f"/proc/{pid}/statm") as f:
                rss_pages = int(f.read().split()[1])
        except OSError:
            continue
        rows.append([int(pid), "user", "I", "Graphic", 20, "R", 12.5, rss_pages, frame["gpu_mem_kb"], comm])
    return rows


class jtop(threading.Thread):  # noqa: N801 - the real class name
    def __init__(self, interval=1.0):
        super().__init__(daemon=True)
        self._interval = float(interval)
        self._server_interval = None
        self._observers: set = set()
        self._trigger = threading.Event()
        self._running = False
        self._stats: dict = {}
        trace = os.environ.get("FAKE_JTOP_TRACE")
        self._frames = json.loads(open(trace).read()) if trace else FRAMES
        self._k = 0
        self.nvpmodel = NVPModel(os.environ.get("FAKE_JTOP_NVPMODEL", "MAXN"),
                                 int(os.environ.get("FAKE_JTOP_NVPMODEL_ID", "0")))
        self.jetson_clocks = JetsonClocks(os.environ.get("FAKE_JTOP_JETSON_CLOCKS", "0") == "1")

    def attach(self, observer):
        self._observers.add(observer)

    def detach(self, observer):
        self._observers.discard(observer)

    def start(self):
        if os.environ.get("FAKE_JTOP_SERVICE") != "active":
            raise JtopException("The jtop.service is not active. Please run:\nsudo systemctl restart jtop.service")
        service = os.environ.get("FAKE_JTOP_SERVICE_VERSION", __version__)
        if service.split(".")[:2] != __version__.split(".")[:2]:
            raise JtopException(f"Mismatch version jtop service: [{service}] and client: [{__version__}]. "
                                "Please run:\n\nsudo systemctl restart jtop.service")
        self._server_interval = float(os.environ.get("FAKE_JTOP_SERVICE_INTERVAL", self._interval))
        self._update()
        self._running = True
        super().start()

    def run(self):
        stop = threading.Event()
        while self._running:
            stop.wait(self._server_interval)
            if not self._running:
                break
            self._update()
            for observer in list(self._observers):
                observer(self)

    def _update(self):
        f = self._frames[self._k % len(self._frames)]
        self._k += 1
        rails = {name: {"online": True, "type": "INA3221", "status": "ok", "volt": 5000, "curr": mw // 5,
                        "power": mw, "avg": mw, "warn": 0, "crit": 0} for name, mw in f["power"].items()}
        total = rails.pop("POM_5V_IN", None)
        if total is not None:
            total["name"] = "POM_5V_IN"
        else:
            total = {"power": sum(r["power"] for r in rails.values()), "avg": sum(r["avg"] for r in rails.values())}
        self._stats = {
            "gpu": {"gpu": {
                "type": "integrated",
                "status": {"railgate": False, "tpc_pg_mask": False, "3d_scaling": True, "load": f["gpu_load"]},
                "freq": {"governor": "nvhost_podgov", "cur": f["gpu_khz"], "max": GPU_MAX_KHZ, "min": 76800},
                "power_control": "auto"}},
            "mem": {"RAM": {"tot": 4059712, "used": f["ram_used_kb"], "free": 1000000, "buffers": 50000,
                            "cached": 600000, "shared": f["ram_shared_kb"], "lfb": 400},
                    "SWAP": {"tot": 2029852, "used": 0, "cached": 0, "table": {}},
                    "EMC": {"online": True, "val": 12, "cur": 1600000, "max": 1600000, "min": 204000}},
            "processes": _gpu_rows(f),
            "power": {"rail": rails, "tot": total},
            "temperature": {name: {"online": True, "temp": t} for name, t in f["temps"].items()},
            "cpu": {"total": {"user": 10.0, "nice": 0.0, "system": 2.0, "idle": 88.0},
                    "cpu": [{"online": True, "governor": "schedutil", "freq": {"min": 102000, "max": 1479000,
                                                                               "cur": 1479000},
                             "info_freq": {"min": 102000, "max": 1479000, "cur": 1479000}, "idle_state": {},
                             "user": 10.0, "nice": 0.0, "system": 2.0, "idle": 88.0, "model": "ARMv8 Processor rev 1"}
                            for _ in range(4)]},
        }
        self._trigger.set()

    @property
    def interval(self):
        return self._server_interval

    @property
    def interval_user(self):
        return self._interval

    @property
    def gpu(self):
        return self._stats["gpu"]

    @property
    def memory(self):
        return self._stats["mem"]

    @property
    def processes(self):
        return self._stats["processes"]

    @property
    def power(self):
        return self._stats["power"]

    @property
    def temperature(self):
        return self._stats["temperature"]

    @property
    def cpu(self):
        return self._stats["cpu"]

    def ok(self, spin=False):
        if not spin and not self._trigger.is_set():
            self._trigger.wait(self._server_interval * 3)
        if self._running:
            self._trigger.clear()
        return self._running

    def close(self):
        self._running = False

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        return exc_tb is None
