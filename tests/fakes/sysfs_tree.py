"""An Orin's sysfs (L4T 35: hwmon ina3221 with mV and mA) for EDGEBENCH_SYSROOT. The Nano's tree
and its trace writer are the package's recorded Nano (orchestrator/sampling/recorded.py), which
`make bench` measures the samplers against too."""

from __future__ import annotations

from pathlib import Path

from orchestrator.sampling.recorded import write_node


class OrinSysfs:
    """An Orin's hwmon INA3221 (mV, mA; an unconnected `NC` channel) and its GPU devfreq node."""

    def __init__(self, root: Path):
        self.root = Path(root)
        dev = self.root / "sys/class/devfreq/17000000.ga10b"
        write_node(dev / "device/load", "940")
        write_node(dev / "cur_freq", "1300500000")
        write_node(dev / "max_freq", "1300500000")
        hw = self.root / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"
        for n, (label, mv, ma) in enumerate([("VDD_GPU_SOC", 5000, 2000), ("VDD_CPU_CV", 5000, 400),
                                             ("VIN_SYS_5V0", 5000, 1000), ("NC", 0, 0)], start=1):
            write_node(hw / f"in{n}_label", label)
            write_node(hw / f"in{n}_input", str(mv))
            write_node(hw / f"curr{n}_input", str(ma))
