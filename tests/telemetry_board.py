"""A bare machine turned into a board one GPU sampler reads at its OS boundary (as
tests/test_gpu_run.py feeds each one), for tests that run the real `edgebench` in a child: the
recorded Nano's sysfs tree, its tegrastats lines, a fake jtop service or a fake NVML."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from orchestrator.sampling import recorded
from orchestrator.sampling.recorded import NANO_FRAMES, NanoSysfs, TraceWriter

FAKES = Path(__file__).resolve().parent / "fakes"


def board(tmp: Path, sampler: str) -> tuple[dict, list[str], object]:
    """A bare machine turned into a board whose `sampler` reads it at its OS boundary (as
    tests/test_gpu_run.py feeds each one): env, the run's extra arguments, and a closer."""
    root = tmp / "sysroot"
    root.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAKE_", "EDGEBENCH_"))}
    env.update(EDGEBENCH_ROOT=str(tmp), EDGEBENCH_LOCK=str(tmp / "measure.lock"), EDGEBENCH_SYSROOT=str(root),
               PATH=f"{Path(sys.executable).parent}:/usr/bin:/bin")
    close = None
    if sampler == "sysfs":
        close = TraceWriter(NanoSysfs(root), NANO_FRAMES, period_s=0.02).close
    elif sampler == "jtop":
        (root / "run").mkdir()
        (root / "run/jtop.sock").touch()
        env.update(PYTHONPATH=str(recorded.modules_dir()), FAKE_JTOP_SERVICE="active", FAKE_JTOP_GPU_COMMS="main")
    elif sampler == "tegrastats":
        NanoSysfs(root)  # for the GPU's maximum clock
        env.update(EDGEBENCH_TEGRASTATS=str(recorded.tegrastats_program()),
                   FAKE_TEGRASTATS_LINES=str(recorded.tegrastats_lines()))
    elif sampler == "nvml":
        env.update(PYTHONPATH=str(FAKES / "modules"), FAKE_NVML_GPU_COMMS="main")
    return env, ["--gpu-sampler", sampler], close
