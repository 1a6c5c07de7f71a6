"""The one table of GPU/board samplers: their names, in the order automatic selection tries them,
the class behind each, what installs a missing one, and whether `make bench` measures its CPU on
the recorded Nano (sampling/recorded.py). Selection (autodetect.py), the cost measurement (cost.py) and
`make bench` (bench.py, through cost.py) all read it, so a new sampler is one line here."""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    module: str  # under orchestrator.sampling
    cls: str
    fix: str | None = None  # the command that installs a missing dependency
    extra: str | None = None  # or the package extra that does (orchestrator/extras.py says how, here)
    recorded: bool = True  # its cost is measured on the recorded Nano's input


# The order is automatic selection's.
GPU = {
    "jtop": Entry("jtop", "JtopSampler", fix="edgebench bootstrap --redo jetson-stats"),
    "tegrastats": Entry("tegrastats", "TegrastatsSampler"),
    "sysfs": Entry("sysfs", "SysfsSampler"),
    # Against the fake module NVML's cost would time the fake's /proc scan, not the driver: its real
    # cost is measured where a GPU is (the NVML device check), never on recorded input.
    "nvml": Entry("nvml", "NvmlSampler", extra="nvidia", recorded=False),
}
NONE = "none"
CHOICES = (*GPU, NONE)
RECORDED = tuple(name for name, e in GPU.items() if e.recorded)


def install_hint(name: str) -> str:
    """What to run when an asked-for sampler's dependency is missing."""
    entry = GPU[name]
    if entry.extra:
        from orchestrator import extras

        return extras.install_command(entry.extra)
    return entry.fix or f"--gpu-sampler {NONE}"


def sampler_class(name: str) -> type:
    """The class of a GPU sampler, imported only when asked (jtop and pynvml load heavy modules)."""
    entry = GPU[name]
    return getattr(importlib.import_module(f"orchestrator.sampling.{entry.module}"), entry.cls)
