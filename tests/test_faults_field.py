"""Faults a board meets in the field (issue 18): hostile cron arguments, hostile tarballs, a
binary that escapes its process group, odd bytes in a workload, a lost lock race, a C locale.
Each test runs the real code path a user reaches and checks what the user would see."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

FORK_THEN_HANGUP = textwrap.dedent("""
    import os, signal, time
    from orchestrator.interrupts import exit_on_signals
    parent = os.getpid()
    exit_on_signals()
    try:
        pid = os.fork()
        if pid == 0:
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(5)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        print("child exit", os.waitstatus_to_exitcode(status), flush=True)
    finally:
        print("finally in", "parent" if os.getpid() == parent else "child", flush=True)
""")


def test_a_forked_child_hit_by_a_signal_exits_without_unwinding_the_run():
    """Between fork and exec the child of a query is a copy of the run: a hang-up there (the run
    was killed) must not run the run's `finally` blocks, which would rewrite its manifest."""
    res = subprocess.run([sys.executable, "-c", FORK_THEN_HANGUP], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["child exit 129", "finally in parent"]


# -- 1. cron lines --------------------------------------------------------------------------------

def cron_command(line: str, fields: int = 5) -> str:
    """What cron hands to /bin/sh: the line after its schedule (and user) fields, cut at the first
    unescaped %, with `\\%` turned into % (vixie cron's do_command.c)."""
    command = line.split(" ", fields)[fields]
    out, escaped = [], False
    for ch in command:
        if escaped:
            escaped = False
            if ch == "%":
                out[-1] = "%"
                continue
        elif ch == "\\":
            escaped = True
        elif ch == "%":
            break
        out.append(ch)
    return "".join(out)


def eb(root: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, EDGEBENCH_ROOT=str(root), **(env or {}))
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def cron_tab(tmp_path) -> Path:
    tab = tmp_path / "crontab"
    tab.write_bytes(b"MAILTO=me\n0 1 * * * /usr/bin/true\n")
    return tab


RUN = ["run", "--binary", "/bin/true", "--model", "m.gguf", "--workload", "w.jsonl"]


@pytest.mark.parametrize("args, env, named", [
    (["--", *RUN, "--category", "simple\n* * * * * touch /tmp/pwned"], {}, "argument 9 after --"),
    (["--", *RUN, "--category", "simple\r* * * * * touch /tmp/pwned"], {}, "argument 9 after --"),
    (["--", *RUN, "--category", "a\x1bb"], {}, "argument 9 after --"),
    (["--", *RUN, "--category", "a\x85b"], {}, "argument 9 after --"),
    (["--user", "root\n* * * * * root touch /tmp/pwned", "--", *RUN], {}, "--user"),
    (["--user", "-rf", "--", *RUN], {}, "--user '-rf' is not a user name"),
    (["--user", "nano bob", "--", *RUN], {}, "--user 'nano bob' is not a user name"),
    (["--", *RUN], {"EDGEBENCH_CACHE": "/tmp/c\n* * * * * touch /tmp/pwned"}, "EDGEBENCH_CACHE"),
    (["--", *RUN], {"LANG": "C.UTF-8\n@reboot evil"}, "LANG"),
])
def test_cron_install_refuses_every_injection_and_leaves_the_crontab_alone(tmp_path, cron_tab, args, env, named):
    before = cron_tab.read_bytes()
    res = eb(tmp_path, "cron", "install", "--schedule", "@daily", "--crontab-file", str(cron_tab), *args, env=env)
    assert res.returncode == 1, res.stdout + res.stderr
    assert named in res.stderr and "Traceback" not in res.stderr
    assert cron_tab.read_bytes() == before


def test_a_null_byte_in_an_argument_is_refused_as_well(tmp_path, monkeypatch):
    from orchestrator import cron
    from orchestrator.errors import UserError

    monkeypatch.setenv("EDGEBENCH_ROOT", str(tmp_path))
    with pytest.raises(UserError, match=r"argument 2 after -- holds the control character '\\x00'"):
        cron.make_line("@daily", "nightly", ["run", "a\0b"])


def test_arguments_with_percent_signs_reach_the_program_intact(tmp_path, monkeypatch):
    """The written line, through cron's % rule and then /bin/sh, gives the program exactly the
    arguments it was installed with."""
    from orchestrator import cron

    monkeypatch.setenv("EDGEBENCH_ROOT", str(tmp_path))
    monkeypatch.setenv("EDGEBENCH_CACHE", str(tmp_path / "cache 100%\\%"))
    prog = tmp_path / "fake python"
    prog.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                    "print(json.dumps([sys.argv[1:], os.environ['EDGEBENCH_CACHE']]))\n")
    prog.chmod(0o755)
    args = ["run", "--category", "100%", "a\\%b", "\\", "%", "%%", "'%'", '"%"', "\\\\%x", "", "a b\\", "%\\"]
    line = cron.make_line("@daily", "nightly", args, python=str(prog))
    res = subprocess.run(["/bin/sh", "-c", cron_command(line, fields=1)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, (line, res.stdout, res.stderr)
    argv, cache = json.loads((tmp_path / "reports" / "cron" / "nightly.log").read_text())
    assert argv == ["-m", "orchestrator", "batch", "--name", "nightly", "--", *args]
    assert cache == str(tmp_path / "cache 100%\\%")


def test_cron_remove_takes_the_whole_line_even_with_unicode_line_separators(tmp_path, cron_tab):
    before = cron_tab.read_bytes()
    res = eb(tmp_path, "cron", "install", "--schedule", "@daily", "--crontab-file", str(cron_tab), "--", *RUN,
             "--category", "a\u2028b\u2029c\x0cd")
    assert res.returncode == 1 and "argument 9 after --" in res.stderr  # \x0c: a control character
    assert eb(tmp_path, "cron", "install", "--schedule", "@daily", "--crontab-file", str(cron_tab), "--", *RUN,
              "--category", "a\u2028b\u2029c").returncode == 0
    assert cron_tab.read_bytes().count(b"\n") == before.count(b"\n") + 1
    assert "nightly: @daily" in eb(tmp_path, "cron", "list", "--crontab-file", str(cron_tab)).stdout
    res = eb(tmp_path, "cron", "remove", "nightly", "--crontab-file", str(cron_tab))
    assert res.returncode == 0, res.stderr
    assert cron_tab.read_bytes() == before
