"""Small helpers for asking the board things: run a command and read its output without
raising, and the one way root commands are run (`sudo -n`: never a password prompt in an
unattended run)."""

from __future__ import annotations

import os
import subprocess

SUDO = ("sudo", "-n")


def capture(argv: list[str] | tuple[str, ...], timeout: float = 60, env: dict | None = None) -> tuple[int, str]:
    """(exit status, stdout + stderr); 127 when the program is missing, 124 when it timed out."""
    full_env = None
    if env:
        full_env = dict(os.environ)
        full_env.update(env)
    try:
        proc = subprocess.run(
            list(argv), capture_output=True, text=True, errors="replace", timeout=timeout, env=full_env
        )
    except FileNotFoundError:
        return 127, f"{argv[0]}: not found"
    except PermissionError as exc:
        return 126, str(exc)
    except subprocess.TimeoutExpired:
        return 124, f"{argv[0]}: timed out after {timeout:.0f} s"
    return proc.returncode, (proc.stdout or "") + (proc.stderr or "")


def sudo(*argv: str) -> tuple[str, ...]:
    return (*SUDO, *argv)


def login_user() -> str:
    """The user who runs bootstrap (the one sudo acts for), for group membership."""
    return os.environ.get("SUDO_USER") or os.environ.get("USER") or os.environ.get("LOGNAME") or "root"
