"""The one table of GPU/board samplers: their names, in the order automatic selection tries them,
the class behind each, and what installs a missing one. Selection (select.py), the cost
measurement (cost.py) and `make bench` all read it, so a new sampler is one line here."""

from __future__ import annotations

import importlib

# name -> (module under orchestrator.sampling, class); the order is automatic selection's.
GPU = {
    "jtop": ("jtop", "JtopSampler"),
    "tegrastats": ("tegrastats", "TegrastatsSampler"),
    "sysfs": ("sysfs", "SysfsSampler"),
    "nvml": ("nvml", "NvmlSampler"),
}
NONE = "none"
CHOICES = (*GPU, NONE)
# The extra that installs a sampler's Python dependency (orchestrator/extras.py says how, here).
EXTRA = {"nvml": "nvidia"}


def install_hint(name: str) -> str:
    """What to run when an asked-for sampler's dependency is missing."""
    if name == "jtop":
        return "edgebench bootstrap --redo jetson-stats"
    if name in EXTRA:
        from orchestrator import extras

        return extras.install_command(EXTRA[name])
    return "--gpu-sampler none"


def sampler_class(name: str) -> type:
    """The class of a GPU sampler, imported only when asked (jtop and pynvml load heavy modules)."""
    module, cls = GPU[name]
    return getattr(importlib.import_module(f"orchestrator.sampling.{module}"), cls)
