"""Per-query figures from a GPU/board sampler's readings, placed on the query's timeline.

Every GPU sampler writes the same field names, so one function serves them all:
`gpu_load_pct`, `gpu_freq_mhz`, `gpu_freq_max_mhz`, `gpu_mem_proc_bytes` (the child's GPU memory),
`ram_shared_bytes` (GPU/NvMap memory on a Jetson), `power_total_mw`, `power_<rail>_mw`,
`temp_<zone>_c`. A field a sampler cannot read is absent, and the figure built on it is None.

Choices that change the numbers:
- Prefill is [t_echo_s, t_first_token_s), decode is [t_first_token_s, t_last_token_s]; a reading
  belongs to the phase its time stamp falls in. A reading is an average over the sampler's interval
  before it, so at 500 ms a 40 ms prefill is usually seen by no reading: `_n` says how many counted.
- Energy covers the whole query [0, t_exit_s]: the trapezoid integral of power over the readings inside
  it, with the first reading's power held back to the spawn (0) and the last one's held to the exit.
  Integrating only between the first and the last reading would drop the edges: at 0.5 s sampling a
  1.2 s query loses about half its time, and J/token would not compare across categories.
  `energy_window_s` is the span the readings themselves cover, `energy_coverage` its share of t_exit,
  and `energy_coverage_low` flags a share below COVERAGE_LOW (the figure leans on held readings).
- Net energy subtracts the board's idle power (measured in the same run before its first query:
  sampling/idle.py) over the query's time: `energy_net_j = energy_j - idle_power_mw / 1000 * t_exit`.
  MELT and the single-script Jetson benchmarks report both; neither is "the" energy of a query.
- `temp_peak_c` leaves out the Nano's PMIC sensor (tegrastats `PMIC`, thermal zone `PMIC-Die`), which
  reads a fixed 100C.
- `throttled`: the GPU was loaded (>= 90%, where the governor asks for its top clock) with its clock
  below the maximum in force for consecutive readings spanning at least 0.25 s. A lone such reading
  is the clock ramping up after the load rose (tens of ms under DVFS), not a cap, and does not
  count. None when no reading had load, clock and maximum to tell.
"""

from __future__ import annotations

import itertools

from orchestrator import fields as F

LOADED_PCT = 90.0
COVERAGE_LOW = 0.9
THROTTLE_MIN_S = 0.25
_IGNORED_TEMPS = {"temp_pmic_c", "temp_pmic_die_c"}
RSS_NOTE = (
    "n_gpu_layers is set: CUDA allocations on a Jetson's shared memory are not counted in RSS, "
    "so peak_rss_bytes understates the process; see gpu_mem_peak_bytes and gpu_shared_mem_peak_bytes"
)


def _values(samples: list[dict], field: str, lo: float | None = None, hi: float | None = None,
            hi_open: bool = False) -> list[float]:
    out = []
    for s in samples:
        v = s.get(field)
        t = s[F.T_S]
        if v is None or (lo is not None and t < lo) or (hi is not None and (t >= hi if hi_open else t > hi)):
            continue
        out.append(v)
    return out


def _mean(vals: list[float]) -> float | None:
    return round(sum(vals) / len(vals), 3) if vals else None


def integrate_mw(samples: list[dict], field: str, t_end: float | None = None) -> tuple[float | None, float]:
    """Joules from a power series in mW (trapezoids over the readings' own times), and the span the
    readings cover. With `t_end`, the integral runs over [0, t_end]: the first reading's power is held
    back to 0 and the last one's held to `t_end` (one reading is enough). Without it, only between
    the readings (two needed)."""
    pts = sorted((s[F.T_S], s[field]) for s in samples if s.get(field) is not None)
    if not pts or (t_end is None and len(pts) < 2):
        return None, 0.0
    span = pts[-1][0] - pts[0][0]
    if t_end is not None:
        pts = [(0.0, pts[0][1]), *pts, (t_end, pts[-1][1])]
    mj = sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in itertools.pairwise(pts))
    return mj / 1000.0, span


def _energy(window: list[dict], timeline: dict) -> dict:
    t_exit, tokens = timeline.get("t_exit_s"), timeline.get("output_tokens")
    idle_mw = timeline.get(F.IDLE_POWER_MW)
    energy, span = integrate_mw(window, F.POWER_TOTAL_MW, t_exit)
    coverage = round(min(1.0, span / t_exit), 4) if energy is not None and t_exit else None
    net = energy - idle_mw / 1000.0 * t_exit if energy is not None and idle_mw is not None and t_exit else None
    out = {F.ENERGY_J: None if energy is None else round(energy, 6), F.ENERGY_WINDOW_S: round(span, 6),
           F.ENERGY_COVERAGE: coverage, F.ENERGY_COVERAGE_LOW: None if coverage is None else coverage < COVERAGE_LOW,
           F.ENERGY_PER_TOKEN_J: round(energy / tokens, 6) if energy is not None and tokens else None,
           F.IDLE_POWER_MW: idle_mw, F.ENERGY_NET_J: None if net is None else round(net, 6),
           F.ENERGY_NET_PER_TOKEN_J: round(net / tokens, 6) if net is not None and tokens else None}
    rails = sorted({k for s in window for k in s if k.startswith("power_") and k.endswith("_mw")
                    and not k.endswith("_avg_mw") and k != F.POWER_TOTAL_MW})
    for field in rails:
        rail_j, _ = integrate_mw(window, field, t_exit)
        out[f"energy_{field[len('power_'):-len('_mw')]}_j"] = None if rail_j is None else round(rail_j, 6)
    return out


def _phase(samples: list[dict], name: str, lo, hi, hi_open: bool) -> dict:
    if lo is None or hi is None:
        vals: list[float] = []
    else:
        vals = _values(samples, F.GPU_LOAD_PCT, lo, hi, hi_open)
    return {
        f"gpu_load_{name}_mean_pct": _mean(vals),
        f"gpu_load_{name}_peak_pct": max(vals) if vals else None,
        f"gpu_load_{name}_n": len(vals),
    }


def _throttled(samples: list[dict]) -> bool | None:
    seen = False
    run_start: float | None = None
    for s in sorted(samples, key=lambda x: x[F.T_S]):
        load, cur, top = s.get(F.GPU_LOAD_PCT), s.get(F.GPU_FREQ_MHZ), s.get(F.GPU_FREQ_MAX_MHZ)
        if load is None or cur is None or top is None:
            continue
        seen = True
        if load >= LOADED_PCT and cur < top:
            run_start = s[F.T_S] if run_start is None else run_start
            if s[F.T_S] - run_start >= THROTTLE_MIN_S:
                return True
        else:
            run_start = None
    return False if seen else None


def derive(samples: list[dict], timeline: dict) -> dict:
    """The flat per-query figures (see the module doc). Readings marked `discard` are left out."""
    kept = [s for s in samples if not s.get(F.DISCARD)]
    t_exit = timeline.get("t_exit_s")
    window = [s for s in kept if s[F.T_S] >= 0 and (t_exit is None or s[F.T_S] <= t_exit)]
    t_echo, t_first = timeline.get("t_echo_s"), timeline.get("t_first_token_s")
    t_last = timeline.get("t_last_token_s")
    out: dict = {}
    out.update(_phase(window, "prefill", t_echo, t_first, hi_open=True))
    out.update(_phase(window, "decode", t_first, t_last if t_last is not None else t_exit, hi_open=False))
    mem = _values(window, F.GPU_MEM_PROC_BYTES)
    out[F.GPU_MEM_PEAK_BYTES] = max(mem) if mem else None
    shared = _values(window, F.RAM_SHARED_BYTES)
    out[F.GPU_SHARED_MEM_PEAK_BYTES] = max(shared) if shared else None

    out.update(_energy(window, timeline))

    temps = [v for s in window for k, v in s.items()
             if k.startswith("temp_") and k.endswith("_c") and k not in _IGNORED_TEMPS and v is not None]
    out[F.TEMP_PEAK_C] = max(temps) if temps else None
    out[F.THROTTLED] = _throttled(window)
    ngl = timeline.get("n_gpu_layers")
    if ngl:
        out[F.RSS_NOTE] = RSS_NOTE
    return out
