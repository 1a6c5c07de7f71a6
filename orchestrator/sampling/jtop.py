"""jtop sampler: jetson-stats' client (4.3.2 on a Nano, the version its Python 3.6 service runs;
the same attributes exist in 7.x), connected once per run, read each time the service pushes data.

The service, not this client, sets the pace: its interval is the one asked by the first client
that connected, so a jtop window left open elsewhere decides it. The interval in force is recorded
(`interval_s` asked, `service_interval_s` in force) with a warning when they differ.

Readings arrive through `jetson.attach(observer)`: the client's own thread calls us after each
update, so there is no polling and no duplicate reading. The observer must never raise (an
exception there ends the client's thread), so every read is guarded. Units, per jetson-stats 4.3.2:
GPU load %, clocks kHz, RAM kB (`shared` is GPU/NvMap memory), power mW, temperatures C, process
rows `[pid, user, gpu, type, prio, state, cpu%, rss, gpu_mem (kB), name]` where rss is in pages up to
4.3.x and in kB from 4.4 on (7.x included), so the unit follows the client's version.
"""

from __future__ import annotations

import importlib.util
import os
import time

from orchestrator import fields as F
from orchestrator.sysinfo import sysroot

from .pushed import PushedSampler

KB = 1024
_MAX_WARNINGS = 5
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _name(raw: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in raw.lower())


def rss_unit_bytes(version: str | None) -> int:
    """Bytes per unit of a process row's rss: a page up to jetson-stats 4.3, a kB from 4.4."""
    try:
        major_minor = tuple(int(x) for x in (version or "").split(".")[:2])
    except ValueError:
        major_minor = ()
    return KB if major_minor >= (4, 4) else _PAGE


def reading(jetson, pid: int, rss_unit: int = _PAGE) -> dict:
    """One flat sample from a connected jtop client (any of its sections may be missing)."""
    out: dict = {}
    gpus = dict(jetson.gpu or {})
    if gpus:
        gpu = gpus.get("gpu") or next(iter(gpus.values()))
        load = gpu.get("status", {}).get("load")
        if load is not None:
            out[F.GPU_LOAD_PCT] = float(load)
        freq = gpu.get("freq", {})
        if freq.get("cur") is not None:
            out[F.GPU_FREQ_MHZ] = freq["cur"] / 1000
        if freq.get("max") is not None:
            out[F.GPU_FREQ_MAX_MHZ] = freq["max"] / 1000
    for row in jetson.processes or []:
        if int(row[0]) == pid:
            out[F.GPU_MEM_PROC_BYTES] = int(row[8]) * KB
            out[F.PROC_RSS_BYTES] = int(row[7]) * rss_unit
            break
    mem = jetson.memory or {}
    ram = mem.get("RAM") or {}
    if ram.get("used") is not None:
        out[F.RAM_USED_BYTES] = ram["used"] * KB
    if ram.get("shared") is not None:
        out[F.RAM_SHARED_BYTES] = ram["shared"] * KB
    swap = mem.get("SWAP") or {}
    if swap.get("used") is not None:
        out[F.SWAP_USED_BYTES] = swap["used"] * KB
    emc = mem.get("EMC") or {}
    if emc.get("cur") is not None:
        out[F.EMC_FREQ_MHZ] = emc["cur"] / 1000
    if emc.get("val") is not None:
        out[F.EMC_LOAD_PCT] = emc["val"]
    power = jetson.power or {}
    for rail, values in (power.get("rail") or {}).items():
        if values.get("power") is not None:
            out[f"power_{_name(rail)}_mw"] = values["power"]
    tot = power.get("tot") or {}
    if tot.get("power") is not None:
        out[F.POWER_TOTAL_MW] = tot["power"]
        if tot.get("name"):
            out[f"power_{_name(tot['name'])}_mw"] = tot["power"]
    for zone, values in (jetson.temperature or {}).items():
        if values.get("online", True) and values.get("temp") is not None:
            out[f"temp_{_name(zone)}_c"] = float(values["temp"])
    cpu = jetson.cpu or {}
    for i, core in enumerate(cpu.get("cpu") or []):
        cur = (core.get("freq") or {}).get("cur")
        if core.get("online") and cur is not None:
            out[f"cpu{i}_freq_mhz"] = cur / 1000
    return out


class JtopSampler(PushedSampler):
    name = "jtop"
    pace = "the jtop service samples"
    opens_to_probe = True  # the service's version is checked only when a client connects

    def available(self) -> str | None:
        sock = sysroot() / "run/jtop.sock"
        if not sock.exists():
            return f"no jtop service socket at {sock}"
        if importlib.util.find_spec("jtop") is None:
            return "jetson-stats is not installed in this environment"
        return None

    def __init__(self, interval_s: float):
        super().__init__(interval_s)
        self._jetson = None
        self.version: str | None = None
        self.service_interval_s: float | None = None
        self.board: dict = {}

    def open(self) -> None:
        if self._jetson is not None:
            return
        import jtop  # jetson-stats: imported here so that no other sampler pays for it

        self.version = getattr(jtop, "__version__", None)
        self._rss_unit = rss_unit_bytes(self.version)
        client = jtop.jtop(interval=self.interval_s)
        try:
            client.start()
        except jtop.JtopException as exc:
            raise RuntimeError(f"jtop: {str(exc).splitlines()[0]}") from exc
        self._jetson = client
        self.service_interval_s = float(client.interval)
        if abs(self.service_interval_s - self.interval_s) > 1e-6:
            self.warn(
                f"the jtop service samples every {self.service_interval_s:g} s, not the {self.interval_s:g} s asked: "
                "its first client set it (close other jtop clients, then: sudo systemctl restart jtop.service)")
        self.board = self._board_state(client)
        client.attach(self._observe)

    @staticmethod
    def _board_state(client) -> dict:
        state = {}
        nvp = getattr(client, "nvpmodel", None)
        if nvp is not None:
            state["nvpmodel"] = {"name": getattr(nvp, "name", str(nvp)), "id": getattr(nvp, "id", None)}
        jc = getattr(client, "jetson_clocks", None)
        if jc is not None:
            state["jetson_clocks"] = bool(jc)
        return state

    def close(self) -> None:
        client, self._jetson = self._jetson, None
        if client is None:
            return
        client.detach(self._observe)
        try:
            client.close()
        except Exception as exc:  # noqa: BLE001 - closing must not hide the run's own outcome
            self.warn(f"jtop close: {exc}")

    def _observe(self, jetson) -> None:
        now = time.perf_counter_ns()
        cpu0 = time.thread_time()
        try:
            self._arrived(now, lambda: reading(jetson, self._pid, self._rss_unit))
        except Exception as exc:  # noqa: BLE001 - an observer that raises kills jtop's thread
            self.warn(f"jtop reading skipped: {type(exc).__name__}: {exc}", limit=_MAX_WARNINGS)
        finally:
            self.cpu_time_s += time.thread_time() - cpu0

    def info(self) -> dict:
        return {**super().info(), "service_interval_s": self.service_interval_s, "jetson_stats": self.version,
                **self.board}
