"""Fake `pynvml` (the module nvidia-ml-py installs) with the calls, constants, error classes and
return shapes the NVML sampler uses. Readings follow FAKE_NVML_* variables; every running process
whose name is in FAKE_NVML_GPU_COMMS (default `main`) holds FAKE_NVML_PROC_MIB of GPU memory.
FAKE_NVML=absent makes nvmlInit fail as it does without a driver."""

from __future__ import annotations

import os
from types import SimpleNamespace

NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_GRAPHICS = 0
NVML_CLOCK_SM = 1
NVML_CLOCK_MEM = 2


class NVMLError(Exception):
    pass


class NVMLError_NotSupported(NVMLError):  # noqa: N801 - the real class name
    def __str__(self):
        return "Not Supported"


class NVMLError_LibraryNotFound(NVMLError):  # noqa: N801
    def __str__(self):
        return "NVML Shared Library Not Found"


_HANDLE = object()
_calls = {"init": 0}


def _env(name: str, default: str) -> str:
    return os.environ.get(f"FAKE_NVML_{name}", default)


def nvmlInit():
    if os.environ.get("FAKE_NVML") == "absent":
        raise NVMLError_LibraryNotFound()
    _calls["init"] += 1


def nvmlShutdown():
    _calls["init"] -= 1


def nvmlDeviceGetCount():
    return 1


def nvmlDeviceGetHandleByIndex(index):
    return _HANDLE


def nvmlDeviceGetName(handle):
    return "Fake H100 80GB HBM3"


def nvmlSystemGetDriverVersion():
    return "550.54.15"


def nvmlDeviceGetMaxClockInfo(handle, kind):
    return 1980


def nvmlDeviceGetUtilizationRates(handle):
    return SimpleNamespace(gpu=int(_env("LOAD", "87")), memory=31)


def nvmlDeviceGetMemoryInfo(handle):
    return SimpleNamespace(total=80 << 30, free=70 << 30, used=10 << 30)


def nvmlDeviceGetComputeRunningProcesses(handle):
    comms = set(_env("GPU_COMMS", "main").split(","))
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() in comms:
                        out.append(SimpleNamespace(pid=int(pid), usedGpuMemory=int(_env("PROC_MIB", "1234")) << 20))
            except OSError:
                pass
    return out


def nvmlDeviceGetPowerUsage(handle):
    return int(_env("POWER_MW", "250000"))


def nvmlDeviceGetTemperature(handle, sensor):
    if _env("NO_TEMP", "") == "1":
        raise NVMLError_NotSupported()
    return 54


def nvmlDeviceGetClockInfo(handle, kind):
    return 1755 if kind == NVML_CLOCK_GRAPHICS else 2619
