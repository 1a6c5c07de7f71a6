"""Step: the project's environment on a board. The board's own Python is 3.6; `make
bootstrap` (tools/ensure-venv.sh) has already made .venv from a Python >= 3.10 (a standalone
CPython through uv where the board has none). This step checks that, and that the report
stack (polars, plotnine) imports there, installing the `report` extra if not. The system
Python is never changed.

The import is tried in a child process: on the Nano's Cortex-A57 (ARMv8.0, no LSE atomics)
some recent aarch64 wheels die with SIGILL ("Illegal instruction") at import, which would
kill bootstrap itself. A report stack that does not run is not a failed bootstrap: runs never
import it, and the report renders on any other machine from a copied run folder."""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys

from orchestrator import net
from orchestrator.bootstrap.steps import Command, Context, Step, sh
from orchestrator.errors import UserError
from orchestrator.nanocheck import constraints

MIN_PYTHON = (3, 10)
REPORT_MODULES = ("polars", "plotnine")


def missing_modules() -> list[str]:
    return [m for m in REPORT_MODULES if importlib.util.find_spec(m) is None]


def report_stack_problem(python: str = sys.executable, env: dict | None = None, timeout: float = 300) -> str | None:
    """None when `import polars, plotnine` works in a child of `python`; else what to do instead."""
    try:
        res = subprocess.run([python, "-c", "import polars, plotnine"], capture_output=True, text=True,
                             timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        why = f"did not finish within {timeout:.0f} s"
    else:
        if res.returncode == 0:
            return None
        if res.returncode in (-signal.SIGILL, 128 + signal.SIGILL):
            why = ("dies with \"Illegal instruction\" (SIGILL): a wheel was built for a newer ARM CPU than this "
                   "one (the Nano's Cortex-A57 is ARMv8.0, without LSE atomics)")
        elif res.returncode < 0:
            why = f"dies with signal {signal.Signals(-res.returncode).name}"
        else:
            last = (res.stderr.strip().splitlines() or ["no message"])[-1]
            why = f"fails ({last})"
    return (f"importing the report stack (polars, plotnine) here {why}. Runs are not affected: the measuring "
            "process never imports it. Render the reports on another machine instead: copy reports/<run_id>/ to a "
            "laptop and run `edgebench report reports/<run_id>` there, then open report.html or browse them with "
            "`edgebench serve`")


class PythonEnv(Step):
    name = "python-env"
    title = "a modern Python in .venv (not the board's 3.6) with polars and plotnine"

    def is_done(self, ctx: Context) -> bool:
        return ctx.entry(self.name) is not None and not missing_modules()

    def urls(self, ctx: Context) -> list[tuple[str, str]]:
        return [(net.pypi_index(), "polars and plotnine from the package index")] if missing_modules() else []

    def commands(self, ctx: Context) -> list[Command]:
        return [
            Command(("# .venv was made by tools/ensure-venv.sh with a Python >= 3.10 (`uv python install 3.11` "
                     "where the board has none); the system Python is left alone",)),
            Command((sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-e",
                     f"{ctx.options.root}[report]", *constraints.pip_args(ctx.options.profile))),
            Command((sys.executable, "-c", "import polars, plotnine")),
        ]

    def run(self, ctx: Context) -> dict:
        if sys.version_info < MIN_PYTHON:  # only reachable through a hand-made environment
            raise UserError(
                f"edgebench runs on Python {sys.version.split()[0]}; it needs >= 3.10",
                fix="rm -rf .venv && make bootstrap (tools/ensure-venv.sh installs a standalone CPython with uv)",
            )
        install = self.commands(ctx)[1]
        if missing_modules():
            ctx.log(f"  installing the report stack ({', '.join(missing_modules())}) into {sys.prefix}")
            sh(install, timeout=3600)
        problem = report_stack_problem()
        if problem:
            ctx.log(f"  warning: {problem}")
        return {"python": sys.version.split()[0], "executable": sys.executable, "prefix": sys.prefix,
                "report_stack": "unavailable" if problem else "ok", **({"report_stack_problem": problem}
                                                                        if problem else {})}
