"""The one interface every sampler offers the run session.

Life cycle, for a whole run:

    s.open()                        once, before the first query (connect to a service, probe files)
    for each query attempt:
        s.start(pid, t0_ns)         begin watching the child; t0_ns = perf_counter_ns() just before spawn
        samples = s.stop()          the readings of this attempt, each stamped `t_s` (seconds since t0_ns)
        figures = s.aggregate(samples, timeline)   per-query figures merged into the query record
    s.close()                       once, after the last query, even when the run is interrupted
    s.info()                        for the manifest: name, asked and achieved interval, own CPU cost

`timeline` (seconds since the spawn, any of them may be None when the query failed early):
    t_echo_s          the prompt echo arrived: model loaded, prefill starts
    t_first_token_s   the first generated token arrived: prefill ends, decode starts
    t_last_token_s    the last generated token arrived
    t_exit_s          the child exited
    output_tokens     generated tokens counted from the stream
    kernel_peak_rss_bytes   the child's peak RSS from wait4 (the kernel's high-water mark)
    main_cpu_s        the child's user + system CPU seconds from wait4
    n_gpu_layers      the -ngl in force (None: none passed)
    idle_power_mw     the board's idle power measured before the run's first query (None: not measured)

A sample is a flat dict with units in its field names (`_bytes`, `_pct`, `_mw`, `_c`, `_mhz`)
plus `t_s`; the session adds `sampler`, `query_id` and `attempt` before storing it. The
figures `aggregate` returns are flat too and must not collide with another sampler's: prefix
them with what they measure (`gpu_`, `power_`, `temp_`), never with the sampler's name, so a
report reads `gpu_load_decode_mean_pct` whether jtop or NVML measured it.
"""

from __future__ import annotations


class Sampler:
    """A base class rather than a Protocol so that fakes in tests only override what they
    need. The defaults record nothing."""

    name: str = "null"
    # "process" watches the child; "gpu" watches the GPU and the board.
    kind: str = "process"

    def open(self) -> None:
        """Run-lived set-up (a jtop connection, a tegrastats child): once per run."""

    def close(self) -> None:
        """Undo `open`. Called once, also after an interruption; safe to call twice."""

    def start(self, pid: int, t0_ns: int) -> None:
        """Begin watching `pid`. `t0_ns` is `time.perf_counter_ns()` taken just before the
        spawn, so that sample times share the runner's clock and origin."""

    def stop(self) -> list[dict]:
        """Stop watching, and return this attempt's samples. Safe to call twice."""
        return []

    def aggregate(self, samples: list[dict], timeline: dict) -> dict:
        """Per-query figures from this attempt's `samples` (see the module doc)."""
        return {}

    def info(self) -> dict:
        """What this sampler is and how it was set, for the run manifest."""
        return {"name": self.name, "kind": self.kind}


def check_interval(interval_s: float) -> float:
    if not interval_s > 0:
        raise ValueError(f"interval_s must be positive, got {interval_s!r}")
    return float(interval_s)


class Arrivals:
    """Readings as they arrive: how many, and the interval actually achieved between consecutive
    ones (the mean gap), so scheduling jitter or a source's own pace shows in the manifest."""

    def __init__(self):
        self.n = 0
        self._last_ns: int | None = None
        self._gaps_ns = 0
        self._gaps = 0

    def note(self, now_ns: int) -> None:
        if self._last_ns is not None:
            self._gaps_ns += now_ns - self._last_ns
            self._gaps += 1
        self._last_ns = now_ns
        self.n += 1

    def restart(self) -> None:
        """The next reading follows no sampling interval (a polling sampler's first of a query:
        the time since the last query's final reading is no interval it achieved)."""
        self._last_ns = None

    def interval_s(self) -> float | None:
        return round(self._gaps_ns / self._gaps / 1e9, 6) if self._gaps else None


class RunSampler(Sampler):
    """What every real sampler keeps over the whole run (opened once, many queries) for the
    manifest's info(): its interval, the readings' arrivals, the readings kept for queries, its own
    CPU time and its warnings. Polling samplers (polling.py) and pushed ones (pushed.py) build on it."""

    kind = "gpu"
    # True: only open() tells whether it can run here (autodetect.py opens it to probe, and keeps it open).
    opens_to_probe = False

    def __init__(self, interval_s: float):
        self.interval_s = check_interval(interval_s)
        self.arrivals = Arrivals()
        self.n_samples = 0
        self.cpu_time_s = 0.0
        self.warnings: list[str] = []
        self.selection: dict | None = None  # set by autodetect.py: why this sampler runs

    def available(self) -> str | None:
        """None when this machine offers what the sampler reads, else why not (selection's reason)."""
        return None

    def warn(self, message: str, limit: int | None = None) -> None:
        """Each message once; at most `limit` warnings when given (one per skipped reading adds up)."""
        if message not in self.warnings and (limit is None or len(self.warnings) < limit):
            self.warnings.append(message)

    def achieved_interval_s(self) -> float | None:
        return self.arrivals.interval_s()

    def info(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "interval_s": self.interval_s,
            "achieved_interval_s": self.achieved_interval_s(),
            "n_samples": self.n_samples,
            "cpu_time_s": round(self.cpu_time_s, 6),
            "warnings": list(self.warnings),
            "selection": self.selection,
        }
