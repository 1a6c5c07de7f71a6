"""tegrastats sampler: one `tegrastats --interval MS` child for the whole run, its lines stamped on
arrival on the runner's clock. The fallback where the jtop service is absent or of another version.

tegrastats picks its own tick; a line is stamped when it is read, so `t_s` is the end of the
interval the line averages. Lines that arrive between queries are counted (for the achieved
interval) but not parsed, which keeps the reader's cost to the queries. A line that does not parse
is counted and the first few reasons go into the warnings, never into the run's failure.

The binary is EDGEBENCH_TEGRASTATS when set (tests point it at a fake), else `tegrastats` on PATH.
On L4T 32 it runs without root and then prints no GPU or EMC clock.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time

from orchestrator import fields as F

from ..sysinfo import sysroot
from .pushed import PushedSampler
from .sysfs import find_gpu
from .tegrastats_format import parse_line

_MAX_WARNINGS = 5


def tegrastats_binary() -> str | None:
    return os.environ.get("EDGEBENCH_TEGRASTATS") or shutil.which("tegrastats")


class TegrastatsSampler(PushedSampler):
    name = "tegrastats"
    pace = "tegrastats runs"

    def __init__(self, interval_s: float, binary: str | None = None):
        super().__init__(interval_s)
        self.binary = binary or tegrastats_binary()
        self._proc: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self._max_mhz: float | None = None
        self.child_cpu_time_s: float | None = None
        self.n_malformed = 0

    def available(self) -> str | None:
        return None if self.binary else "tegrastats is not on PATH"

    def open(self) -> None:
        if self._proc is not None:
            return
        if not self.binary:
            raise RuntimeError(self.available())
        ms = max(1, round(self.interval_s * 1000))
        self._proc = subprocess.Popen([self.binary, "--interval", str(ms)], stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, bufsize=0)
        gpu = find_gpu(sysroot())
        # The line has the GPU clock only with root, never its maximum: read that once for `throttled`.
        if gpu and "max_freq" in gpu:
            try:
                self._max_mhz = int(gpu["max_freq"].read_text()) / 1e6
            except (OSError, ValueError):
                self._max_mhz = None
        self._reader = threading.Thread(target=self._read_lines, name="edgebench-tegrastats", daemon=True)
        self._reader.start()

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            import psutil

            times = psutil.Process(proc.pid).cpu_times()
            self.child_cpu_time_s = round(times.user + times.system, 6)
        except Exception:  # noqa: BLE001 - the cost figure is optional, the shutdown is not
            pass
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)

    def _read_lines(self) -> None:
        last_cpu = time.thread_time()
        try:
            for raw in iter(self._proc.stdout.readline, b""):
                now = time.perf_counter_ns()
                try:
                    self._arrived(now, lambda raw=raw: self._parse(raw))
                except ValueError as exc:
                    self.n_malformed += 1
                    self.warn(f"tegrastats line skipped: {exc}", limit=_MAX_WARNINGS)
                cpu = time.thread_time()
                # Added per line (not at the end) so that info() is right while the run goes on.
                self.cpu_time_s += cpu - last_cpu
                last_cpu = cpu
        except (OSError, ValueError, AttributeError):
            pass  # the pipe closed under us at close(): that is how reading ends
        finally:
            self.cpu_time_s += time.thread_time() - last_cpu

    def _parse(self, raw: bytes) -> dict:
        sample = parse_line(raw.decode("utf-8", "replace"))
        if self._max_mhz is not None:
            sample[F.GPU_FREQ_MAX_MHZ] = self._max_mhz
        return sample

    def info(self) -> dict:
        return {**super().info(), "n_lines": self.arrivals.n, "n_malformed": self.n_malformed,
                "child_cpu_time_s": self.child_cpu_time_s, "binary": self.binary}
