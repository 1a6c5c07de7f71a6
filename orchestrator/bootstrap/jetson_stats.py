"""Step: jetson-stats 4.3.2, system-wide (it installs the `jtop.service` daemon, on the board's
Python 3.6) and in the project's environment. The jtop client refuses a service of another
major.minor ("Mismatch version jtop service"), and 4.3.2 is the last release for Python 3.6,
so both sides are pinned to it and checked."""

from __future__ import annotations

import os
import re
import sys

from orchestrator import net
from orchestrator.bootstrap.steps import Command, Context, Step, sh
from orchestrator.bootstrap.system import capture, login_user, sudo
from orchestrator.errors import UserError
from orchestrator.nanocheck.constraints import pip_args

VERSION = "4.3.2"
REQUIREMENT = f"jetson-stats=={VERSION}"
SERVICE = "jtop.service"
GROUP = "jtop"


def system_python() -> str:
    """The board's own Python (3.6 on JetPack 4), which runs the jtop service."""
    return os.environ.get("EDGEBENCH_SYSTEM_PYTHON", "/usr/bin/python3")


def env_python() -> str:
    """The project's environment (.venv), the one running edgebench."""
    return sys.executable


def version_of(python: str) -> str | None:
    rc, out = capture((python, "-m", "pip", "show", "jetson-stats"), timeout=120)
    m = re.search(r"^Version:\s*(\S+)", out, re.M)
    return m.group(1) if rc == 0 and m else None


def major_minor(version: str | None) -> tuple[str, ...] | None:
    return tuple(version.split(".")[:2]) if version else None


def check_versions(service: str | None, client: str | None) -> None:
    """Refuse what the jtop client would refuse at the first sample, hours into a run."""
    if service is None or client is None:
        where = "system-wide (the service)" if service is None else "in the project's environment"
        raise UserError(f"jetson-stats is not installed {where}", fix="edgebench bootstrap --redo jetson-stats")
    if major_minor(service) != major_minor(client):
        raise UserError(
            f"jetson-stats {client} in the project's environment cannot talk to the jtop service {service} "
            "(the client raises \"Mismatch version jtop service\" unless major.minor match)",
            fix=f"sudo -H {system_python()} -m pip install {REQUIREMENT} && sudo systemctl restart {SERVICE} && "
            f".venv/bin/python -m pip install {REQUIREMENT}  (or: edgebench bootstrap --redo jetson-stats)",
        )


class JetsonStats(Step):
    name = "jetson-stats"
    title = f"jetson-stats {VERSION}: jtop.service system-wide, the same version in .venv, user in group jtop"
    needs_sudo = True

    def urls(self, ctx: Context) -> list[tuple[str, str]]:
        return [(net.pypi_index(), f"{REQUIREMENT} from the package index")]

    def commands(self, ctx: Context) -> list[Command]:
        user = login_user()
        return [
            Command(("# if the system Python has no pip (a fresh JetPack 4 has none):",)),
            Command(sudo("apt-get", "install", "-y", "python3-pip")),
            Command(sudo("-H", system_python(), "-m", "pip", "install", REQUIREMENT)),
            Command(sudo("systemctl", "enable", SERVICE)),
            Command(sudo("systemctl", "restart", SERVICE)),
            Command(("systemctl", "is-active", SERVICE)),
            Command((f"# if {user} is not in group {GROUP} yet (then log out and back in):",)),
            Command(sudo("usermod", "-aG", GROUP, user)),
            # the project's CPython 3.11 is held to the versions nano-check proved on the Nano's CPU (the
            # system Python 3.6 above gets jetson-stats alone: those pins are cp311 wheels)
            Command((env_python(), "-m", "pip", "install", REQUIREMENT, *pip_args(ctx.options.profile))),
        ]

    def run(self, ctx: Context) -> dict:
        cmds = self.commands(ctx)
        _note, get_pip, install, enable, restart, active, _note2, add_group, in_env = cmds
        if capture((system_python(), "-m", "pip", "--version"))[0] != 0:
            ctx.log(f"  {system_python()} has no pip: installing python3-pip")
            sh(get_pip, timeout=1800)
        ctx.log(f"  installing {REQUIREMENT} system-wide with {system_python()} (the jtop service)")
        sh(install, timeout=1800)
        sh(enable)
        sh(restart)
        rc, out = capture(active.argv)
        if out.strip() != "active":
            raise UserError(
                f"{SERVICE} is not active after installing jetson-stats ({out.strip() or rc})",
                fix=f"sudo systemctl status {SERVICE}; journalctl -u {SERVICE} | tail; then "
                "edgebench bootstrap --redo jetson-stats",
            )
        user = login_user()
        relogin = False
        if not in_group(user, GROUP):
            sh(add_group)
            relogin = True
            ctx.log(f"  added {user} to group {GROUP}: log out and back in (or `newgrp {GROUP}`) before "
                    "`edgebench run`, so that jtop can reach the service")
        ctx.log(f"  installing {REQUIREMENT} in the project's environment ({env_python()})")
        sh(in_env, timeout=1800)
        service, client = version_of(system_python()), version_of(env_python())
        check_versions(service, client)
        return {"service_version": service, "env_version": client, "user": user, "relogin_needed": relogin}


def in_group(user: str, group: str) -> bool:
    """Group membership as the account database says (a new membership counts before re-login)."""
    rc, out = capture(("id", "-nG", user))
    return rc == 0 and group in out.split()
