"""NVML sampler (nvidia-ml-py, imported only when chosen) for desktop and server NVIDIA GPUs:
utilisation, memory used by the child PID, board power, temperature and clocks.

Caveats that change the numbers:
- `gpu_load_pct` is NVML's utilisation: the share of the last sample period (1/6 s to 1 s by
  device) in which any kernel ran, not how busy the SMs were.
- Power is `nvmlDeviceGetPowerUsage`. On an H100 (driver 580) its value changed every 100 ms
  whatever the sampling interval, so sampling power faster than 100 ms adds no information; the
  driver documents it as an average on recent GPUs, over a window not verified here, so energy
  over a query of a few hundred ms is smeared into its neighbours.
- Per-process memory comes from the compute process list; a PID in another PID namespace (a
  container) does not match, and then `gpu_mem_proc_bytes` is absent.
A call the device does not support is skipped for the rest of the run with one warning.
"""

from __future__ import annotations

import os

from orchestrator import fields as F

from .polling import PollingSampler


def _device_index() -> int:
    return int(os.environ.get("EDGEBENCH_NVML_DEVICE", "0"))


class NvmlSampler(PollingSampler):
    name = "nvml"

    def __init__(self, interval_s: float):
        super().__init__(interval_s)
        self._nvml = None
        self._handle = None
        self._skip: set[str] = set()
        self.device: dict = {}

    def available(self) -> str | None:
        try:
            import pynvml
        except ImportError:
            return "nvidia-ml-py is not installed (the `nvidia` extra)"
        try:
            pynvml.nvmlInit()
        except Exception as exc:  # noqa: BLE001 - NVMLError_LibraryNotFound, DriverNotLoaded, ...
            return f"no NVIDIA driver answers NVML: {exc}"
        try:
            if pynvml.nvmlDeviceGetCount() < 1:
                return "NVML sees no GPU"
        finally:
            pynvml.nvmlShutdown()
        return None

    def open(self) -> None:
        if self._nvml is not None:
            return
        import pynvml

        pynvml.nvmlInit()
        self._nvml = pynvml
        self._handle = pynvml.nvmlDeviceGetHandleByIndex(_device_index())
        name = pynvml.nvmlDeviceGetName(self._handle)
        self.device = {
            "gpu_name": name.decode() if isinstance(name, bytes) else name,
            "driver": self._text(pynvml.nvmlSystemGetDriverVersion()),
            F.GPU_FREQ_MAX_MHZ: self._call("max_clock", pynvml.nvmlDeviceGetMaxClockInfo, self._handle,
                                           pynvml.NVML_CLOCK_GRAPHICS),
        }

    @staticmethod
    def _text(value) -> str:
        return value.decode() if isinstance(value, bytes) else str(value)

    def close(self) -> None:
        super().close()
        if self._nvml is not None:
            self._nvml.nvmlShutdown()
            self._nvml = None

    def _call(self, what: str, fn, *args):
        if what in self._skip:
            return None
        try:
            return fn(*args)
        except self._nvml.NVMLError as exc:
            self._skip.add(what)
            self.warn(f"NVML {what} unavailable on this device, not sampled: {exc}")
            return None

    def _read(self, pid: int) -> dict | None:
        nv, h = self._nvml, self._handle
        out: dict = {}
        util = self._call("utilization", nv.nvmlDeviceGetUtilizationRates, h)
        if util is not None:
            out[F.GPU_LOAD_PCT] = float(util.gpu)
            out[F.GPU_MEM_BUSY_PCT] = float(util.memory)
        mem = self._call("memory", nv.nvmlDeviceGetMemoryInfo, h)
        if mem is not None:
            out[F.GPU_MEM_USED_BYTES] = int(mem.used)
        procs = self._call("processes", nv.nvmlDeviceGetComputeRunningProcesses, h)
        for p in procs or []:
            if p.pid == pid and p.usedGpuMemory is not None:
                out[F.GPU_MEM_PROC_BYTES] = int(p.usedGpuMemory)
        power = self._call("power", nv.nvmlDeviceGetPowerUsage, h)
        if power is not None:
            out[F.POWER_TOTAL_MW] = int(power)
        temp = self._call("temperature", nv.nvmlDeviceGetTemperature, h, nv.NVML_TEMPERATURE_GPU)
        if temp is not None:
            out["temp_gpu_c"] = float(temp)
        clock = self._call("clock", nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_GRAPHICS)
        if clock is not None:
            out[F.GPU_FREQ_MHZ] = float(clock)
        if self.device.get(F.GPU_FREQ_MAX_MHZ):
            out[F.GPU_FREQ_MAX_MHZ] = float(self.device[F.GPU_FREQ_MAX_MHZ])
        mclock = self._call("memory clock", nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_MEM)
        if mclock is not None:
            out[F.GPU_MEM_FREQ_MHZ] = float(mclock)
        return out

    def info(self) -> dict:
        return {**super().info(), **self.device}
