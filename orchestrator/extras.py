"""The optional parts of edgebench (setup.cfg's extras), what imports them, and the one message a
command gives when one is missing: which extra, and the exact command that installs it here."""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import sys
from pathlib import Path

from orchestrator.errors import UserError

# extra -> the modules its commands import (the distributions setup.cfg lists bring them)
MODULES = {
    "report": ("polars", "plotnine", "pandas", "matplotlib"),
    "twin": ("gguf", "numpy"),
    "jetson": ("jtop",),
    "nvidia": ("pynvml",),
    "fleet": ("ansible",),
}


def missing(extra: str) -> list[str]:
    return [m for m in MODULES[extra] if importlib.util.find_spec(m) is None]


def checkout() -> Path | None:
    """The source tree this package runs from (an editable install), or None for a wheel."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "setup.cfg").is_file() and (here / "orchestrator").is_dir() else None


def _shown(path: Path) -> str:
    """A path as the user can type it from where they stand: relative inside the working directory
    (.venv/bin/edgebench in a checkout), else absolute."""
    cwd = Path.cwd()
    if cwd == Path(cwd.anchor):
        return str(path)
    try:
        rel = str(path.relative_to(cwd))
    except ValueError:
        return str(path)
    return rel if os.sep in rel else f".{os.sep}{rel}"  # a bare name would be looked up on PATH


def self_command() -> str:
    """How to type `edgebench` here: the bare name when the shell finds this very install, else
    its path (after `make run` the command lives in .venv/bin, which is not on PATH)."""
    exe = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    found = shutil.which("edgebench")
    if exe is not None and exe.name == "edgebench" and found and Path(found).resolve() == exe.resolve():
        return "edgebench"
    script = Path(sys.executable).parent / "edgebench"
    if script.is_file():
        return shlex.quote(_shown(script))
    return f"{shlex.quote(sys.executable)} -m orchestrator"


def install_command(extra: str) -> str:
    """The command that installs `extra` into the environment this process runs in."""
    python = shlex.quote(_shown(Path(sys.executable)))
    tree = checkout()
    if tree is not None:
        if Path(sys.prefix).resolve() == (tree / ".venv").resolve() and Path.cwd().resolve() == tree:
            return f"make report (or .venv/bin/pip install -e '.[{extra}]')" if extra == "report" \
                else f".venv/bin/pip install -e '.[{extra}]'"
        return f"{python} -m pip install -e {shlex.quote(f'{tree}[{extra}]')}"
    return f"{python} -m pip install {shlex.quote(f'edgebench[{extra}]')}" + _wheel_alternative(extra)


def _wheel_alternative(extra: str) -> str:
    """A wheel installed from a file cannot be re-resolved from an index that lacks edgebench:
    name the extra's own requirements as this install's metadata lists them."""
    from importlib import metadata

    try:
        reqs = metadata.requires("edgebench") or []
    except metadata.PackageNotFoundError:
        return ""
    mine = [r.split(";")[0].strip() for r in reqs if f'extra == "{extra}"' in r.replace("'", '"')]
    if not mine:
        return ""
    python = shlex.quote(_shown(Path(sys.executable)))
    return f" (or, without an index that has edgebench: {python} -m pip install {' '.join(map(shlex.quote, mine))})"


def require(extra: str, what: str) -> None:
    """Refuse `what` with the install command when the extra's modules are not importable."""
    gone = missing(extra)
    if gone:
        raise UserError(f"{what} needs the `{extra}` extra ({', '.join(gone)} not installed)",
                        fix=install_command(extra))
