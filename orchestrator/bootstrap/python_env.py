"""Step: the project's environment on a board. The board's own Python is 3.6; `make
bootstrap` (tools/ensure-venv.sh) has already made .venv from a Python >= 3.10 (a standalone
CPython through uv where the board has none). This step checks that, and that the report
stack (polars, plotnine) is importable there, installing the `report` extra if not. The
system Python is never changed."""

from __future__ import annotations

import importlib.util
import sys

from orchestrator import net
from orchestrator.bootstrap.steps import Command, Context, Step, sh
from orchestrator.errors import UserError

MIN_PYTHON = (3, 10)
REPORT_MODULES = ("polars", "plotnine")


def missing_modules() -> list[str]:
    return [m for m in REPORT_MODULES if importlib.util.find_spec(m) is None]


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
                     f"{ctx.options.root}[report]")),
            Command((sys.executable, "-c", "import polars, plotnine")),
        ]

    def run(self, ctx: Context) -> dict:
        if sys.version_info < MIN_PYTHON:  # only reachable through a hand-made environment
            raise UserError(
                f"edgebench runs on Python {sys.version.split()[0]}; it needs >= 3.10",
                fix="rm -rf .venv && make bootstrap (tools/ensure-venv.sh installs a standalone CPython with uv)",
            )
        install, check = self.commands(ctx)[1:]
        if missing_modules():
            ctx.log(f"  installing the report stack ({', '.join(missing_modules())}) into {sys.prefix}")
            sh(install, timeout=3600)
        sh(check, timeout=300)
        return {"python": sys.version.split()[0], "executable": sys.executable, "prefix": sys.prefix}
