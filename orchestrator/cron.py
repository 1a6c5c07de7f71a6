"""Edgebench's lines in a crontab: add, list, remove, and never touch anyone else's.

A line of ours ends with the marker `# edgebench:NAME` (cron hands the whole line to /bin/sh,
which reads the marker as a comment). Only lines ending so are ever parsed or rewritten;
every other line is copied through as bytes. python-crontab parses our own lines and
validates schedules, but it never sees the rest: rendering a tab it has read moves SHELL=,
drops assignments written with spaces and rewrites `%`, and a user's crontab must survive
byte for byte.

The line is self-contained because cron runs it with a bare environment: it changes into
the project, sets PATH, HOME, LANG and EDGEBENCH_ROOT (and LD_LIBRARY_PATH, where a CUDA
build needs it), names the interpreter by absolute
path, appends all output to reports/cron/NAME.log, and on a non-zero exit prints that log's
last line (the batch's summary) so cron mail says what went wrong, and only then.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from orchestrator import paths
from orchestrator.errors import UserError

MARKER = "# edgebench:"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# POSIX: a user name is made of the portable filename characters and does not start with '-'.
USER_RE = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._-]{0,31}")
# What the batch needs from the installing shell; cron gives a job almost none of it.
PASSED_ENV = ("PATH", "HOME", "LANG", "LD_LIBRARY_PATH", "EDGEBENCH_LOCK", "EDGEBENCH_CACHE")


@dataclass(frozen=True)
class Entry:
    name: str
    schedule: str
    command: str
    line: str
    user: str | None = None


def log_path(name: str) -> Path:
    return paths.reports_dir() / "cron" / f"{name}.log"


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise UserError(f"{name!r} cannot name a batch: it names its log file and its crontab marker",
                        fix="--name with letters, digits, '.', '_' or '-' (at most 64), e.g. --name nightly")
    return name


def check_schedule(expr: str) -> str:
    from crontab import CronSlices

    expr = " ".join(check_line_text("--schedule", expr).split())
    if not CronSlices.is_valid(expr):
        raise UserError(f"{expr!r} is not a cron schedule",
                        fix='--schedule "MIN HOUR DAY MONTH WEEKDAY", e.g. "0 2 * * *" (02:00 daily), or @daily')
    return expr


def check_line_text(what: str, value: str) -> str:
    """The one gate for every string that reaches a crontab line: a newline (or another control
    character) would end the line and start a job of the caller's choosing."""
    bad = next((c for c in value if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F), None)
    if bad is not None:
        raise UserError(f"{what} holds the control character {bad!r} ({value!r}): cron would read it as the end of "
                        "the line, and what follows as another job",
                        fix=f"{what} without newlines, tabs or other control characters")
    return value


def check_user(user: str) -> str:
    if not USER_RE.fullmatch(check_line_text("--user", user)):
        raise UserError(f"--user {user!r} is not a user name",
                        fix="--user with the login name of a user of this machine, e.g. --user nano")
    return user


def cron_word(what: str, value: str) -> str:
    """One shell word that survives cron's `%` rule (an unescaped % ends the command, `\\%` gives
    %). A backslash cannot precede an escaped % (cron drops the escape then), so each % stands
    outside the quoted parts: `a\\%b` is written `'a\\'\\%b`, which cron hands to sh as `'a\\'%b`."""
    check_line_text(what, value)
    return "\\%".join(shlex.quote(part) if part else "" for part in value.split("%")) or "''"


def batch_command(name: str, args: list[str], python: str | None = None) -> str:
    """The shell command of the line: cd, environment, batch, log, and the mail on failure."""
    root = paths.project_root()
    log = log_path(name)
    env = {"EDGEBENCH_ROOT": str(root), "HOME": str(Path.home()), "LANG": os.environ.get("LANG") or "C.UTF-8"}
    env.update({k: os.environ[k] for k in PASSED_ENV if os.environ.get(k) and k not in env})
    env_words = " ".join(f"{k}={cron_word(f'the environment variable {k}', v)}" for k, v in sorted(env.items()))
    batch = " ".join([cron_word("the Python interpreter's path", python or sys.executable), "-m", "orchestrator",
                      "batch", "--name", cron_word("--name", name), "--",
                      *(cron_word(f"argument {i} after --", a) for i, a in enumerate(args, 1))])
    q_log, q_dir = cron_word("the log's path", str(log)), cron_word("the log folder", str(log.parent))
    return (f"cd {cron_word('the project folder', str(root))} && mkdir -p {q_dir}"
            f" && env {env_words} {batch} >> {q_log} 2>&1 || tail -n 1 {q_log}")


def make_line(schedule: str, name: str, args: list[str], user: str | None = None, python: str | None = None) -> str:
    who = f" {check_user(user)}" if user is not None else ""
    return f"{check_schedule(schedule)}{who} {batch_command(check_name(name), args, python)} {MARKER}{name}"


def parse_line(line: str, system: bool = False) -> Entry | None:
    """Our entry if the line is one of ours, else None (and the line is left alone)."""
    text = line.rstrip("\r\n")
    stripped = text.rstrip()
    head, sep, name = stripped.rpartition(" " + MARKER)
    if not sep or not NAME_RE.fullmatch(name) or stripped.lstrip().startswith("#"):
        return None
    from crontab import CronTab

    tab = CronTab(tab=head + "\n", user=False if system else None)
    jobs = list(tab)
    if len(jobs) != 1 or not jobs[0].is_valid():
        return None
    job = jobs[0]
    return Entry(name, str(job.slices), job.command, text, getattr(job, "user", None) if system else None)


class Crontab:
    """A crontab as lines: the current user's (through `crontab -l` / `crontab -`) or a file."""

    def __init__(self, file: Path | None = None, system: bool = False):
        self.file = Path(file) if file else None
        self.system = system
        self.lines = self._read()

    def _read(self) -> list[str]:
        if self.file:
            try:
                data = self.file.read_bytes()
            except FileNotFoundError:
                return []
            return _lines(data)
        res = subprocess.run([_crontab_bin(), "-l"], capture_output=True)
        if res.returncode != 0:
            if b"no crontab" in res.stderr.lower():
                return []
            raise UserError(f"crontab -l failed: {res.stderr.decode(errors='replace').strip()}",
                            fix="check that cron is installed and this user may use it (crontab -l)")
        return _lines(res.stdout)

    def entries(self) -> list[Entry]:
        return [e for e in (parse_line(x, self.system) for x in self.lines) if e]

    def add(self, line: str, name: str) -> bool:
        """Replace the entry called `name`, or append; True if one was replaced."""
        out, replaced = [], False
        for x in self.lines:
            e = parse_line(x, self.system)
            if e and e.name == name:
                if not replaced:
                    out.append(line + "\n")
                replaced = True
            else:
                out.append(x)
        if not replaced:
            if out and not out[-1].endswith("\n"):
                out[-1] += "\n"  # cron ignores a last line without its newline
            out.append(line + "\n")
        self.lines = out
        return replaced

    def remove(self, name: str | None, user: str | None = None) -> list[Entry]:
        """Remove the line called `name` (every edgebench line: None), of `user` alone when given."""
        gone, keep = [], []
        for x in self.lines:
            e = parse_line(x, self.system)
            if e and (name is None or e.name == name) and (user is None or e.user == user):
                gone.append(e)
            else:
                keep.append(x)
        self.lines = keep
        return gone

    def save(self) -> None:
        data = "".join(self.lines).encode("utf-8", "surrogateescape")
        if self.file:
            from orchestrator.fsutil import atomic_write

            self.file.parent.mkdir(parents=True, exist_ok=True)
            mode = self.file.stat().st_mode & 0o7777 if self.file.exists() else None
            atomic_write(self.file, data)
            if mode is not None:  # the rename gave it our umask's mode; cron may insist on its own
                os.chmod(self.file, mode)
            return
        res = subprocess.run([_crontab_bin(), "-"], input=data, capture_output=True)
        if res.returncode != 0:
            raise UserError(f"crontab - refused the new table: {res.stderr.decode(errors='replace').strip()}",
                            fix="edgebench cron list, and check the schedule")


def _lines(data: bytes) -> list[str]:
    """Cron's lines end at a newline only: str.splitlines would also split at U+2028, \\f or \\x1c
    inside a line, and a removal would then leave half of it behind."""
    parts = data.decode("utf-8", "surrogateescape").split("\n")
    return [x + "\n" for x in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _crontab_bin() -> str:
    found = shutil.which("crontab")
    if not found:
        raise UserError("there is no `crontab` program on this machine",
                        fix="sudo apt-get install cron, or --crontab-file FILE to write a crontab file")
    return found


def last_line(path: Path) -> str | None:
    """The log's last line (a batch's summary), read from the end: logs grow for weeks."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - 8192))
            lines = fh.read().rstrip(b"\n").split(b"\n")
    except FileNotFoundError:
        return None
    return lines[-1].decode("utf-8", "replace") if lines and lines[-1] else None
