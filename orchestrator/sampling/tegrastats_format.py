"""One tegrastats line -> one flat dict with units in the field names.

Formats taken (see orchestrator/data/recorded/tegrastats/):
- Nano (L4T 32) without root: `EMC_FREQ 0% GR3D_FREQ 0%`, rails `POM_5V_IN 943/943` (mW, no unit).
- Nano with root: the same with clocks, `EMC_FREQ 3%@1600 GR3D_FREQ 0%@921`, plus `IRAM` and `APE`.
- Orin (L4T 35/36): a leading `MM-DD-YYYY HH:MM:SS`, `GR3D_FREQ 0%@[305,305]` (one clock per GPC),
  rails `VDD_IN 5704mW/5704mW`, temperatures lowercase on JetPack 6, `-256C` for a sensor that is off.
Rails and temperatures come in any order; CPU cores may read `off`. A token this parser does not
know is kept, verbatim, in `unparsed` rather than dropped, so a new board's extra field survives.

Power: `power_<rail>_mw` is the instant reading, `power_<rail>_avg_mw` tegrastats' running mean.
`power_total_mw` follows jetson-stats' rule: the board's input rail (POM_5V_IN, VDD_IN) when there
is one, else the sum of the rails (AGX Orin has no input rail).
"""

from __future__ import annotations

import re

from orchestrator import fields as F

MB = 1 << 20
KB = 1 << 10
INPUT_RAILS = ("POM_5V_IN", "VDD_IN")
OFFLINE_C = -256.0

_TIMESTAMP = re.compile(r"\s*(\d\d-\d\d-\d{4} \d\d:\d\d:\d\d)\s+")
_TOKENS = re.compile(
    r"""(?P<ram>RAM\ (\d+)/(\d+)MB\ \(lfb\ (\d+)x(\d+)MB\))
      | (?P<swap>SWAP\ (\d+)/(\d+)MB\ \(cached\ (\d+)MB\))
      | (?P<iram>IRAM\ (\d+)/(\d+)kB\s*\(lfb\ (\d+)kB\))
      | (?P<cpu>CPU\ \[([^\]]*)\])
      | (?P<cpu_open>CPU\ \[)
      | (?P<freq>([A-Z0-9]+)_FREQ\ (\d+)(%)?(?:@(\d+|\[[\d,]*\]))?)(?=\s|$)
      | (?P<temp>([A-Za-z][\w]*)@(-?\d+(?:\.\d+)?)C)(?=\s|$)
      | (?P<rail>([A-Z][A-Z0-9_]*)\ (\d+)(mW)?/(\d+)(mW)?)(?=\s|$)
      | (?P<engine>(APE|NVENC|NVDEC|NVJPG|NVJPG1|OFA|SE|MSENC)\ (\d+|off))(?=\s|$)
    """,
    re.X,
)
_CORE = re.compile(r"(\d+)%(?:@(\d+))?$")

# Where each engine's number goes: APE and the video engines print a clock in MHz.
_FREQ_NAMES = {"GR3D": "gpu", "EMC": "emc"}


def _name(raw: str) -> str:
    return raw.lower()


def _cores(body: str, out: dict) -> None:
    for i, core in enumerate(body.split(",")):
        core = core.strip()
        if core == "off":
            out[f"cpu{i}_online"] = False
            continue
        m = _CORE.match(core)
        if not m:
            raise ValueError(f"CPU core {i} reads {core!r}, expected LOAD%@MHZ, LOAD% or off")
        out[f"cpu{i}_online"] = True
        out[f"cpu{i}_load_pct"] = int(m.group(1))
        if m.group(2) is not None:
            out[f"cpu{i}_freq_mhz"] = int(m.group(2))


def _freq(m: re.Match, out: dict) -> None:
    raw = _group(m, "freq", 1)
    name = _FREQ_NAMES.get(raw, _name(raw))
    value, pct, clock = int(_group(m, "freq", 2)), _group(m, "freq", 3), _group(m, "freq", 4)
    if pct:
        out[f"{name}_load_pct"] = value
    else:
        # VIC_FREQ 729: no percentage, the number is the clock.
        out[f"{name}_freq_mhz"] = value
    if clock:
        clocks = [int(c) for c in clock.strip("[]").split(",") if c]
        if clocks:
            out[f"{name}_freq_mhz"] = max(clocks)
        if clock.startswith("[") and len(clocks) > 1:
            for i, c in enumerate(clocks):
                out[f"{name}_gpc{i}_freq_mhz"] = c


def _group(m: re.Match, outer: str, k: int) -> str | None:
    """The k-th capture group inside the named alternative `outer` (1-based)."""
    return m.group(m.re.groupindex[outer] + k)


def parse_line(line: str) -> dict:
    """Parse one tegrastats line. Raises ValueError (with the reason) for a line that is not one."""
    text = line.strip()
    out: dict = {}
    pos = 0
    ts = _TIMESTAMP.match(text)
    if ts:
        out[F.TIMESTAMP] = ts.group(1)
        pos = ts.end()
    unknown: list[str] = []
    rails: dict[str, int] = {}
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        m = _TOKENS.match(text, pos)
        if m is None:
            end = text.find(" ", pos)
            end = len(text) if end < 0 else end
            unknown.append(text[pos:end])
            pos = end
            continue
        kind = m.lastgroup
        pos = m.end()
        if kind == "ram":
            used, total, lfb_n, lfb_mb = (int(_group(m, "ram", k)) for k in (1, 2, 3, 4))
            out.update(ram_used_bytes=used * MB, ram_total_bytes=total * MB, ram_lfb_blocks=lfb_n,
                       ram_lfb_block_bytes=lfb_mb * MB)
        elif kind == "swap":
            used, total, cached = (int(_group(m, "swap", k)) for k in (1, 2, 3))
            out.update(swap_used_bytes=used * MB, swap_total_bytes=total * MB, swap_cached_bytes=cached * MB)
        elif kind == "iram":
            used, total, lfb = (int(_group(m, "iram", k)) for k in (1, 2, 3))
            out.update(iram_used_bytes=used * KB, iram_total_bytes=total * KB, iram_lfb_bytes=lfb * KB)
        elif kind == "cpu":
            _cores(_group(m, "cpu", 1), out)
        elif kind == "cpu_open":
            raise ValueError("the CPU list is not closed: the line is cut short")
        elif kind == "freq":
            _freq(m, out)
        elif kind == "temp":
            value = float(_group(m, "temp", 2))
            # -256 is how the BPMP reports a sensor that is powered off: no reading, not a frost.
            out[f"temp_{_name(_group(m, 'temp', 1))}_c"] = None if value == OFFLINE_C else value
        elif kind == "rail":
            name = _group(m, "rail", 1)
            rails[name] = int(_group(m, "rail", 2))
            out[f"power_{_name(name)}_mw"] = rails[name]
            out[f"power_{_name(name)}_avg_mw"] = int(_group(m, "rail", 4))
        elif kind == "engine":
            name, value = _group(m, "engine", 1), _group(m, "engine", 2)
            out[f"{_name(name)}_online"] = value != "off"
            if value != "off":
                out[f"{_name(name)}_freq_mhz"] = int(value)
    if F.RAM_USED_BYTES not in out:
        raise ValueError("no `RAM used/totalMB` field: not a tegrastats line")
    if rails:
        total = next((r for r in INPUT_RAILS if r in rails), None)
        out[F.POWER_TOTAL_MW] = rails[total] if total else sum(rails.values())
    if unknown:
        out[F.UNPARSED] = " ".join(unknown)
    return out

