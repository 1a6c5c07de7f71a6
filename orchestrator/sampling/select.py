"""Which GPU/board sampler a run gets: the one asked for (`--gpu-sampler`), else the best this
machine offers, in this order:

1. jtop, when the jtop service's socket exists and a client connects (same major.minor version);
2. tegrastats, when it is on PATH (or EDGEBENCH_TEGRASTATS names it);
3. sysfs, when the GPU devfreq load file exists under EDGEBENCH_SYSROOT;
4. nvml, when nvidia-ml-py is installed and an NVIDIA driver answers;
5. none, whose info() says why each of the others was passed over.

The jtop probe is a real connection (the version check happens only then); the connected client
is kept, so the run's `open()` does not connect twice and the service keeps the interval it took.
"""

from __future__ import annotations

import importlib.util

from orchestrator.errors import UserError
from orchestrator.sysinfo import sysroot

from .base import Sampler

GPU_SAMPLERS = ("jtop", "tegrastats", "sysfs", "nvml", "none")
FIX = "--gpu-sampler " + "|".join(GPU_SAMPLERS)


class NoGpuSampler(Sampler):
    """Records nothing, and says why in the manifest."""

    name = "none"
    kind = "gpu"

    def __init__(self, reason: str, selection: dict | None = None):
        self.reason = reason
        self.selection = selection or {}

    def info(self) -> dict:
        return {"name": self.name, "kind": self.kind, "reason": self.reason, "selection": self.selection}


def _jtop(interval_s: float):
    from .jtop import JtopSampler

    sock = sysroot() / "run/jtop.sock"
    if not sock.exists():
        raise RuntimeError(f"no jtop service socket at {sock}")
    if importlib.util.find_spec("jtop") is None:
        raise RuntimeError("jetson-stats is not installed in this environment")
    sampler = JtopSampler(interval_s)
    sampler.open()
    return sampler


def _tegrastats(interval_s: float):
    from .tegrastats import TegrastatsSampler

    sampler = TegrastatsSampler(interval_s)
    if sampler.available():
        raise RuntimeError(sampler.available())
    return sampler


def _sysfs(interval_s: float):
    from .sysfs import SysfsSampler

    sampler = SysfsSampler(interval_s)
    if sampler.available():
        raise RuntimeError(sampler.available())
    return sampler


def _nvml(interval_s: float):
    from .nvml import NvmlSampler

    sampler = NvmlSampler(interval_s)
    if sampler.available():
        raise RuntimeError(sampler.available())
    return sampler


_BUILDERS = {"jtop": _jtop, "tegrastats": _tegrastats, "sysfs": _sysfs, "nvml": _nvml}


def _install(choice: str) -> str:
    if choice == "nvml":
        from orchestrator import extras

        return extras.install_command("nvidia")
    return {"jtop": "edgebench bootstrap --redo jetson-stats"}.get(choice, "--gpu-sampler none")


def make_gpu_sampler(choice: str | None, interval_s: float) -> Sampler:
    """The sampler for `choice` (one of GPU_SAMPLERS), or None for the platform's best."""
    if choice is not None and choice not in GPU_SAMPLERS:
        raise UserError(f"unknown GPU sampler {choice!r}", fix=FIX)
    if choice == "none":
        return NoGpuSampler("--gpu-sampler none was asked", {"none": "asked"})
    if choice is not None:
        try:
            sampler = _BUILDERS[choice](interval_s)
        except (RuntimeError, ImportError) as exc:
            fix = _install(choice)
            raise UserError(f"the {choice} GPU sampler cannot run here: {exc}",
                            fix=f"{fix}  (or run with --gpu-sampler none)") from exc
        sampler.selection = {choice: "asked"}
        return sampler
    passed: dict[str, str] = {}
    for name, build in _BUILDERS.items():
        try:
            sampler = build(interval_s)
        except (RuntimeError, ImportError) as exc:
            passed[name] = str(exc)
            continue
        sampler.selection = {**passed, name: "chosen automatically"}
        return sampler
    return NoGpuSampler("no GPU telemetry source on this machine", passed)


def describe(sampler: Sampler) -> str:
    """One line for the run's start: which GPU sampler runs, or why none does."""
    if isinstance(sampler, NoGpuSampler):
        why = "; ".join(f"{k}: {v}" for k, v in sampler.selection.items())
        return f"GPU telemetry: none ({why})" if why else "GPU telemetry: none"
    return f"GPU telemetry: {sampler.name} every {getattr(sampler, 'interval_s', '?')} s"
