"""How far a long download has come: a bar redrawn in place on a terminal, and where the output
goes to a file or a pipe (cron, a CI log, `make bootstrap | tee`), one line each tenth."""

from __future__ import annotations

import sys
import time

STEP_PCT = 10  # a line each time this many percent more have arrived (not on a terminal)
BAR = 30
REDRAW_S = 0.2  # a terminal bar is redrawn when its percentage changes, or at most this often


class Progress:
    def __init__(self, name: str, total: int | None, start: int = 0, log=print, tty: bool = False, out=None):
        self.name, self.total, self.log, self.tty = name, total, log, tty
        self.out = out or sys.stderr
        self.started, self.start = time.monotonic(), start
        self.shown = self._pct(start) // STEP_PCT * STEP_PCT if total else 0
        self.drawn = False
        self.drawn_at, self.drawn_pct = 0.0, -1

    def _pct(self, done: int) -> int:
        return min(100, done * 100 // self.total) if self.total else 0

    def _line(self, done: int) -> str:
        rate = (done - self.start) / max(time.monotonic() - self.started, 1e-6) / 2**20
        size = f"{done / 2**20:.1f} of {self.total / 2**20:.1f} MiB" if self.total else f"{done / 2**20:.1f} MiB"
        return f"{size}, {rate:.1f} MiB/s"

    def update(self, done: int) -> None:
        if not self.total:
            return
        pct = self._pct(done)
        if self.tty:
            now = time.monotonic()
            if pct == self.drawn_pct and now - self.drawn_at < REDRAW_S:
                return
            self.drawn_at, self.drawn_pct = now, pct
            filled = BAR * pct // 100
            self.out.write(f"\r  {self.name} [{'#' * filled}{'.' * (BAR - filled)}] {pct:3d}%  {self._line(done)}  ")
            self.out.flush()
            self.drawn = True
        elif pct >= self.shown + STEP_PCT:
            self.shown = pct // STEP_PCT * STEP_PCT
            self.log(f"  {self.name}: {pct}% ({self._line(done)})")

    def close(self) -> None:
        if self.drawn:
            self.out.write("\n")
            self.out.flush()
            self.drawn = False
