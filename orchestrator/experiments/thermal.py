"""Waiting between items: a fixed cool-down, and thermal gating (wait until every thermal zone
reads at or below a temperature, or a timeout). A board that heats up over a sweep throttles
its clocks, and the later items would measure the heat, not the change the sweep makes."""

from __future__ import annotations

import time
from pathlib import Path

from orchestrator.errors import UserError

# The Nano's PMIC-Die zone is not a sensor: it reads a constant 100 C (tegrastats shows
# PMIC@100C on an idle board). Gating on it would never pass.
IGNORED_ZONES = ("PMIC",)


def read_temps(root: Path) -> dict[str, float]:
    """Zone type (or name) -> degrees C from sys/class/thermal/thermal_zone*/temp (millidegrees).
    Zones that cannot be read (some report errors while the sensor is off) are left out, and so
    are the constant ones in IGNORED_ZONES."""
    out = {}
    for zone in sorted((root / "sys" / "class" / "thermal").glob("thermal_zone*")):
        try:
            milli = int((zone / "temp").read_text().strip())
        except (OSError, ValueError):
            continue
        try:
            name = (zone / "type").read_text().strip() or zone.name
        except OSError:
            name = zone.name
        if name.startswith(IGNORED_ZONES):
            continue
        out[name if name not in out else zone.name] = milli / 1000
    return out


class Gate:
    """`before_item` hook for a session: sleeps `cooldown_s` between items (not before the
    first), then, with `max_temp_c`, polls until the hottest zone is at or below it, giving up
    after `timeout_s`. Returns what it did, for the record."""

    def __init__(self, cooldown_s: float = 0.0, max_temp_c: float | None = None, timeout_s: float = 600.0,
                 root: Path | None = None, poll_s: float = 1.0, sleep=time.sleep, clock=time.monotonic, log=print):
        from orchestrator.sysinfo import sysroot

        self.cooldown_s, self.max_temp_c, self.timeout_s = cooldown_s, max_temp_c, timeout_s
        self.root = root or sysroot()
        self.poll_s, self.sleep, self.clock, self.log = poll_s, sleep, clock, log
        self._first = True
        if max_temp_c is not None and not read_temps(self.root):
            raise UserError(f"--max-temp needs temperatures, and {self.root / 'sys/class/thermal'} has no readable "
                            "thermal zone", fix="--cooldown SECONDS instead of --max-temp")

    def settings(self) -> dict:
        return {"cooldown_s": self.cooldown_s, "max_temp_c": self.max_temp_c, "timeout_s": self.timeout_s}

    def __call__(self, item) -> dict:
        t0 = self.clock()
        cooled = 0.0 if self._first else self.cooldown_s
        self._first = False
        if cooled:
            self.sleep(cooled)
        note = {"cooldown_s": cooled}
        if self.max_temp_c is not None:
            temps = read_temps(self.root)
            note["temp_start_c"] = max(temps.values(), default=None)
            timed_out = False
            while temps and max(temps.values()) > self.max_temp_c:
                if self.clock() - t0 >= self.timeout_s:
                    timed_out = True
                    self.log(f"warning: still {max(temps.values()):.1f} C after waiting {self.timeout_s:g} s for "
                             f"{self.max_temp_c:g} C; measuring anyway (recorded)")
                    break
                self.sleep(self.poll_s)
                temps = read_temps(self.root)
            note.update(temp_end_c=max(temps.values(), default=None), max_temp_c=self.max_temp_c,
                        timed_out=timed_out)
        note["waited_s"] = round(self.clock() - t0, 3)
        return {"gate": note}
