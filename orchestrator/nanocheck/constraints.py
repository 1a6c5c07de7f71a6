"""The Nano's pip constraints (orchestrator/data/constraints/jetson-nano.txt): one `name==version`
line per distribution that nano-check's Python check installed as aarch64 cp311 wheels and
imported, and exercised, under `qemu-aarch64-static -cpu cortex-a57`. Every pip install into the
board's environment is held to them (tools/ensure-venv.sh, bootstrap's python-env and
jetson-stats steps), so the next install cannot pick a wheel that dies with SIGILL there.

This module owns the file's format: `render` writes it from a nano-check report
(`edgebench nano-check --only python --write-constraints`), `parse` reads it, and
`disagreements` is what fails nano-check when the file and the check's findings differ."""

from __future__ import annotations

import re
from pathlib import Path

from orchestrator import fsutil, packaged
from orchestrator.errors import UserError

FILE = "jetson-nano.txt"
PROFILE = "jetson-nano"
WRITE = "edgebench nano-check --only python --write-constraints"


def path() -> Path:
    return packaged.data_path("constraints", FILE)


def pip_args(profile: str) -> tuple[str, ...]:
    """`-c FILE` for a pip install into a Nano's environment; nothing elsewhere."""
    return ("-c", str(path())) if profile == PROFILE else ()


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def render(report: dict) -> str:
    """The file's text from a nano-check report; refuses while any import failed."""
    imports = report.get("imports") or {}
    if not imports:
        raise UserError("this nano-check report has no Python import results to pin", fix=WRITE)
    bad = {name: r["status"] for name, r in imports.items() if r["status"] != "ok"}
    if bad:
        raise UserError(f"cannot pin what does not run on the Cortex-A57: {bad}",
                        fix="cap those packages in setup.cfg's requirements, then rerun " + WRITE)
    head = [
        "# The versions `edgebench nano-check` proved on the Jetson Nano's CPU: aarch64 cp311 wheels",
        f"# (manylinux, glibc <= {report.get('wheel_platforms_max_glibc', '?')}) imported and exercised by "
        f"Python {report.get('python_aarch64') or '?'}",
        "# under qemu-aarch64-static -cpu cortex-a57 (ARMv8.0, no LSE atomics). Every pip install on a Nano",
        "# uses this file (pip -c), and nano-check fails while it disagrees with what it proves. Regenerate:",
        f"#   {WRITE}",
    ]
    pins = sorted((canonical(n), r["version"]) for n, r in imports.items())
    return "\n".join([*head, *(f"{n}=={v}" for n, v in pins), ""])


def parse(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep or not name.strip() or not version.strip():
            raise UserError(f"{FILE}: {line!r} is not a `name==version` pin", fix=WRITE)
        out[canonical(name.strip())] = version.strip()
    return out


def disagreements(pinned: dict[str, str], imports: dict) -> list[str]:
    """What differs between the pins and nano-check's `imports` (report.json): each as a sentence."""
    found = {canonical(n): r for n, r in imports.items()}
    out = []
    for name in sorted(set(pinned) | set(found)):
        r, pin = found.get(name), pinned.get(name)
        if r is None:
            out.append(f"{name}=={pin} is pinned but nano-check did not install it")
        elif r["status"] != "ok":
            what = f"{name} {r['version']}: {r['status']} under cortex-a57 ({r.get('error') or 'no detail'})"
            out.append(f"{what}{'; it is pinned' if pin == r['version'] else ''}")
        elif pin is None:
            out.append(f"{name} {r['version']} runs on the Cortex-A57 but is not pinned")
        elif pin != r["version"]:
            out.append(f"{name}: pinned {pin}, nano-check installed and proved {r['version']}")
    return out


def compare(report: dict) -> dict:
    """The comparison nano-check records: the file and what disagrees with the report's imports."""
    p = path()
    return {"file": str(p), "disagreements": disagreements(parse(p.read_text()), report.get("imports") or {})}


def write(report: dict) -> Path:
    p = packaged.data_path("constraints") / FILE
    fsutil.atomic_write(p, render(report).encode())
    return p
