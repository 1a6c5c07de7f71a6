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

from orchestrator.errors import UserError

from . import registry
from .base import Sampler

GPU_SAMPLERS = registry.CHOICES
FIX = "--gpu-sampler " + "|".join(GPU_SAMPLERS)


class NoGpuSampler(Sampler):
    """Records nothing, and says why in the manifest."""

    name = registry.NONE
    kind = "gpu"

    def __init__(self, reason: str, selection: dict | None = None):
        self.reason = reason
        self.selection = selection or {}

    def info(self) -> dict:
        return {"name": self.name, "kind": self.kind, "reason": self.reason, "selection": self.selection}


def _build(name: str, interval_s: float) -> Sampler:
    """A sampler that can run here, or RuntimeError/ImportError saying why not. A sampler whose
    only real probe is a connection (jtop: the version check happens only then) is opened here,
    and kept open for the run."""
    sampler = registry.sampler_class(name)(interval_s)
    why = sampler.available()
    if why:
        raise RuntimeError(why)
    if sampler.opens_to_probe:
        sampler.open()
    return sampler


def make_gpu_sampler(choice: str | None, interval_s: float) -> Sampler:
    """The sampler for `choice` (one of GPU_SAMPLERS), or None for the platform's best."""
    if choice is not None and choice not in GPU_SAMPLERS:
        raise UserError(f"unknown GPU sampler {choice!r}", fix=FIX)
    if choice == registry.NONE:
        return NoGpuSampler("--gpu-sampler none was asked", {"none": "asked"})
    if choice is not None:
        try:
            sampler = _build(choice, interval_s)
        except (RuntimeError, ImportError) as exc:
            fix = registry.install_hint(choice)
            raise UserError(f"the {choice} GPU sampler cannot run here: {exc}",
                            fix=f"{fix}  (or run with --gpu-sampler none)") from exc
        sampler.selection = {choice: "asked"}
        return sampler
    passed: dict[str, str] = {}
    for name in registry.GPU:
        try:
            sampler = _build(name, interval_s)
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
