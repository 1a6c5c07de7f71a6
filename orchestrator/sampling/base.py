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
    """A base class rather than a Protocol so that fakes in tests (and the null sampler) only
    override what they need. The defaults record nothing."""

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


class NullSampler(Sampler):
    """Records nothing: for runs that want timings without any sampling thread in the way."""
