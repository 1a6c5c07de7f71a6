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
from waiting import HANG_S

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


# -- 2. tarballs ----------------------------------------------------------------------------------

def crafted_tar(path: Path, entries: list[tuple]) -> Path:
    """entries: (name, bytes) a file, (name, "->", target) a symlink, (name, "=>", target) a hard
    link, (name, "dir"), (name, "fifo"), (name, "chr")."""
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        for name, kind, *rest in ((e[0], e[1], *e[2:]) for e in entries):
            info = tarfile.TarInfo(name)
            if isinstance(kind, bytes):
                info.size = len(kind)
                tar.addfile(info, io.BytesIO(kind))
                continue
            info.type = {"->": tarfile.SYMTYPE, "=>": tarfile.LNKTYPE, "dir": tarfile.DIRTYPE,
                         "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE}[kind]
            info.mode = 0o755 if kind == "dir" else 0o644
            info.linkname = rest[0] if rest else ""
            tar.addfile(info)
    return path


def long_symlink_chain(top: str) -> list[tuple]:
    """CVE-2025-4517's shape: links through folders whose names are so long that the resolved
    path passes PATH_MAX, where os.path.realpath (and so tarfile's 'data' filter) stops
    resolving; a last link then climbs out and a file is written through it."""
    comp = "d" * 247
    steps = "abcdefghijklmnop"
    out, path = [], top
    for step in steps:
        out.append((f"{path}/{comp}", "dir"))
        out.append((f"{path}/{step}", "->", comp))
        path = f"{path}/{comp}"
    link = "/".join([top, *steps, "l" * 254])
    out.append((link, "->", "/".join([".."] * len(steps))))
    out.append((f"{top}/escape", "->", link[len(top) + 1:] + "/../../../.."))
    out.append((f"{top}/escape/escaped-by-chain", b"pwned"))
    return out


def snapshot(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.parametrize("entries", [
    [("gcc/../../escaped", b"x")],
    [("/tmp/edgebench-absolute-escape", b"x")],
    [("gcc/link", "->", "/etc"), ("gcc/link/escaped", b"x")],
    [("gcc/up", "->", "../.."), ("gcc/up/escaped", b"x")],
    # each link stays inside, one at a time; together they climb out
    [("gcc/a", "dir"), ("gcc/a/b", "->", "."), ("gcc/c", "->", "a/b/b/b/../.."), ("gcc/c/escaped", b"x")],
    # a link placed where an earlier link went through a folder changes where that one leads
    [("gcc/p", "->", "q/.."), ("gcc/q", "->", "."), ("gcc/s", "->", "p/escaped")],
    [("gcc/hard", "=>", "/etc/passwd")],
    [("gcc/hard", "=>", "gcc/never-extracted")],
    [("gcc/fifo", "fifo")],
    [("gcc/tty", "chr")],
    long_symlink_chain("gcc"),
], ids=["dotdot", "absolute", "abs-link", "up-link", "link-chain", "link-over-used-folder", "hardlink-absolute",
        "hardlink-missing", "fifo", "device", "cve-2025-4517"])
def test_a_hostile_tarball_writes_nothing_anywhere(tmp_path, entries):
    from orchestrator.fsutil import UnsafeMember, extract_tar

    archive = crafted_tar(tmp_path / "evil.tar.gz", [("gcc/ok", b"ok"), *entries])
    outer = tmp_path / "outer"
    dest = outer / "a" / "b" / "gcc-8.5.0.partial"
    dest.mkdir(parents=True)
    with pytest.raises(UnsafeMember):
        extract_tar(archive, dest, strip=1)
    # nothing escaped (the chain's file lands four levels up), and not even the good member was written
    assert snapshot(tmp_path) == {"evil.tar.gz", "outer", "outer/a", "outer/a/b", "outer/a/b/gcc-8.5.0.partial"}
    assert not Path("/tmp/edgebench-absolute-escape").exists()


def test_links_that_stay_inside_are_extracted(tmp_path):
    from orchestrator.fsutil import extract_tar

    archive = crafted_tar(tmp_path / "ok.tar.gz", [
        ("gcc/bin", "dir"), ("gcc/bin/gcc", b"#!gcc"), ("gcc/bin/cc", "=>", "gcc/bin/gcc"),
        ("gcc/lib", "dir"), ("gcc/lib/libx.so.1", b"ELF"), ("gcc/lib/libx.so", "->", "libx.so.1"),
        ("gcc/lib64", "->", "lib"), ("gcc/bin/up", "->", "../lib/libx.so"),
        # a chain of links in name order, each pointing at one that comes later
        ("gcc/lib/liby.so", "->", "liby.so.1"), ("gcc/lib/liby.so.1", "->", "liby.so.1.2"),
        ("gcc/lib/liby.so.1.2", b"ELF-Y"),
    ])
    dest = tmp_path / "out"
    assert extract_tar(archive, dest, strip=1) == 11
    assert (dest / "lib/liby.so").read_bytes() == b"ELF-Y"
    assert (dest / "bin/cc").read_bytes() == b"#!gcc" and (dest / "bin/cc").stat().st_nlink == 2
    assert (dest / "lib64/libx.so").read_bytes() == b"ELF" and (dest / "bin/up").read_bytes() == b"ELF"


def packed_gcc(board, tmp_path, extra: list[tuple] = ()) -> Path:
    """A tarball shaped as --pack-gcc writes it (with its .sha256), plus hostile entries."""
    from jetson_board import context

    from orchestrator.bootstrap import gcc

    manifest = json.dumps({"gcc_version": gcc.GCC_VERSION, "machine": context(board).platform["machine"]}).encode()
    tarball = crafted_tar(tmp_path / "gcc-8.5.0-packed.tar.gz",
                          [("gcc-8.5.0/bin/gcc", b"#!/bin/sh\n"), (f"gcc-8.5.0/{gcc.MANIFEST}", manifest), *extra])
    digest = hashlib_sha256(tarball)
    tarball.with_name(tarball.name + ".sha256").write_text(f"{digest}  {tarball.name}\n")
    return tarball


@pytest.mark.parametrize("extra", [[("gcc-8.5.0/hard", "=>", "/etc/passwd")], long_symlink_chain("gcc-8.5.0")],
                         ids=["hardlink-absolute", "cve-2025-4517"])
def test_gcc_from_a_hostile_tarball_is_refused_and_leaves_no_partial_folder(nano, tmp_path, extra):
    from jetson_board import context

    from orchestrator.bootstrap import gcc
    from orchestrator.errors import UserError

    tarball = packed_gcc(nano, tmp_path, extra)
    ctx = context(nano, gcc_from=tarball)
    before = snapshot(tmp_path)
    with pytest.raises(UserError, match="cannot unpack it"):
        gcc.install_packed(ctx, tarball)
    pre = gcc.prefix(ctx)
    assert not pre.with_name(pre.name + ".partial").exists() and not pre.exists()
    assert snapshot(tmp_path) <= before | {str(p.relative_to(tmp_path)) for p in pre.parents
                                           if p.is_relative_to(tmp_path) and p != tmp_path}


def test_gcc_from_checks_the_sha256_that_pack_gcc_wrote(nano, tmp_path):
    from jetson_board import context

    from orchestrator.bootstrap import gcc
    from orchestrator.errors import UserError

    tarball = packed_gcc(nano, tmp_path)
    good = tarball.with_name(tarball.name + ".sha256").read_text().split()[0]
    with open(tarball, "ab") as fh:
        fh.write(b"\0")  # a copy that picked up a byte on its way
    with pytest.raises(UserError) as err:
        gcc.install_packed(context(nano, gcc_from=tarball), tarball)
    assert f"its SHA-256 is {hashlib_sha256(tarball)}, but {tarball.name}.sha256 says {good}" in str(err.value)
    assert not gcc.prefix(context(nano)).with_name("gcc-8.5.0.partial").exists()


def hashlib_sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- 7. smaller -----------------------------------------------------------------------------------

@pytest.mark.parametrize("escape", ["setsid", "nohup"])  # its own session; or its group, deaf to the hang-up
def test_a_descendant_left_behind_is_killed_with_the_query(tmp_path, escape):
    import psutil

    from orchestrator.engine.child import run_child

    binary = tmp_path / "main"
    # the sleeper names itself once it runs; main exits at once after that
    binary.write_text("#!/bin/sh\n"
                      f"{escape} sh -c 'echo $$ > pid.tmp && mv pid.tmp pid && exec sleep 300' "
                      "</dev/null >/dev/null 2>&1 &\n"
                      "while [ ! -f pid ]; do sleep 0.01; done\necho \"sleeper $(cat pid)\"\n")
    binary.chmod(0o755)
    res = run_child([str(binary)], tmp_path, tmp_path / "stderr.log", [], idle_timeout_s=60, timeout_s=120)
    assert res.status == "ok", res.error
    pid = int(b"".join(c for _, c in res.chunks).split()[1])
    try:
        left = psutil.Process(pid)
        assert left.status() == psutil.STATUS_ZOMBIE, left.as_dict(["status", "ppid", "cmdline"])
    except psutil.NoSuchProcess:
        pass


def test_a_json_string_holding_unicode_line_separators_is_one_line(tmp_path):
    from orchestrator.errors import UserError
    from orchestrator.workloads.schema import load_workload

    path = tmp_path / "w.jsonl"
    prompt = "first\u2028second\u2029third\x85fourth\x1cfifth"
    rows = [{"id": "q1", "category": "simple", "prompt": prompt, "max_tokens": 8},
            {"id": "q2", "category": "simple", "prompt": "ok", "max_tokens": 8},
            {"id": "q3", "category": "simple", "prompt": "bad", "max_tokens": "many"}]
    # ensure_ascii=False: the separators stand raw in the file, as any editor may write them
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(UserError) as err:
        load_workload(path)
    problems = [x.strip() for x in str(err.value).split("\n") if x.strip()[len(f"{path}:"):][:1].isdigit()]
    assert problems == [f"{path}:3: field 'max_tokens' must be integer, got string"], str(err.value)
    rows.pop()
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    assert [q.prompt for q in load_workload(path)] == [prompt, "ok"]


HOLD_FLOCK = textwrap.dedent("""
    import fcntl, sys
    fh = open(sys.argv[1], "a")
    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # taken, holder file not written yet: a run starting
    print("held", flush=True)
    sys.stdin.read()
""")


def test_losing_the_lock_race_names_the_holder_that_is_starting(tmp_path, monkeypatch):
    import json as _json

    from orchestrator.measurelock import LockHeld, measuring

    lock = tmp_path / "measure.lock"
    monkeypatch.setenv("EDGEBENCH_LOCK", str(lock))
    # a holder file a SIGKILLed run left behind; its PID is long gone
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / "measure.lock.json").write_text(_json.dumps({"pid": int(dead.stdout), "command": "edgebench old"}))
    holder = subprocess.Popen([sys.executable, "-c", HOLD_FLOCK, str(lock), "starting-run"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(LockHeld) as err:
            with measuring(["edgebench", "run"]):
                pass
        assert str(err.value).startswith(f"another measurement holds this machine: PID {holder.pid} (")
        assert "starting-run" in str(err.value) and "edgebench old" not in str(err.value) and "?" not in str(err.value)
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)


def test_a_non_ascii_prompt_runs_under_the_c_locale(tmp_path, llama_bin_dir, tiny_model):
    """LANG=C without Python's UTF-8 mode: the locale's codec is ASCII, and the prompt must
    still reach `main` as its UTF-8 bytes (the real binary echoes the prompt it was given)."""
    prompt = "Résumé: naïve café, 東京 ✓"
    wl = tmp_path / "w.jsonl"
    wl.write_text(json.dumps({"id": "q1", "category": "simple", "prompt": prompt, "max_tokens": 4},
                             ensure_ascii=False) + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG", "PYTHONUTF8", "PYTHONIOENC"))}
    env.update(LANG="C", LC_ALL="C", PYTHONUTF8="0", PYTHONCOERCECLOCALE="0", EDGEBENCH_ROOT=str(tmp_path))
    probe = subprocess.run([sys.executable, "-c", "import sys; print(sys.getfilesystemencoding())"], env=env,
                           capture_output=True, text=True)
    assert probe.stdout.strip() == "ascii"  # the locale this test is about
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-m", "orchestrator", "run", "--binary", str(llama_bin_dir / "main"),
                          "--model", str(tiny_model), "--workload", str(wl), "--reports-dir", str(out),
                          "--threads", "1"],
                         env=env, capture_output=True, timeout=HANG_S)
    err = res.stderr.decode("utf-8", "replace")
    assert res.returncode == 0, res.stdout.decode("utf-8", "replace") + err
    assert "Traceback" not in err
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    (rec,) = [json.loads(x) for x in (run / "queries.jsonl").read_bytes().split(b"\n") if x]
    assert rec["status"] == "ok", rec
    (stream,) = (run / "raw").rglob("stream.bin")
    assert prompt.encode("utf-8") in stream.read_bytes()  # main echoed the prompt it was given


def test_a_tree_packed_by_tarfile_add_comes_back_whole(tmp_path):
    """What --pack-gcc writes (tarfile.add of a prefix: hard links, .so link chains, a folder
    link) passes the checks and comes back the same."""
    import tarfile

    from orchestrator.fsutil import extract_tar

    pre = tmp_path / "gcc-8.5.0"
    (pre / "bin").mkdir(parents=True)
    (pre / "lib").mkdir()
    (pre / "bin/gcc").write_bytes(b"driver")
    os.link(pre / "bin/gcc", pre / "bin/aarch64-linux-gnu-gcc")
    (pre / "lib/libz.so.1.2.3").write_bytes(b"ELF")
    (pre / "lib/libz.so.1").symlink_to("libz.so.1.2.3")
    (pre / "lib/libz.so").symlink_to("libz.so.1")
    (pre / "lib64").symlink_to("lib")
    with tarfile.open(tmp_path / "packed.tar.gz", "w:gz") as tar:
        tar.add(pre, arcname="gcc-8.5.0")
    dest = tmp_path / "out"
    extract_tar(tmp_path / "packed.tar.gz", dest, strip=1)
    assert (dest / "bin/aarch64-linux-gnu-gcc").read_bytes() == b"driver"
    assert (dest / "bin/gcc").stat().st_ino == (dest / "bin/aarch64-linux-gnu-gcc").stat().st_ino
    assert (dest / "lib64/libz.so").read_bytes() == b"ELF" and os.readlink(dest / "lib/libz.so") == "libz.so.1"


SIGNAL_IN_AN_AT_FORK_HOOK = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from orchestrator.engine.child import run_child
    from orchestrator.interrupts import exit_on_signals
    exit_on_signals()
    fired = []
    def hook():  # stands for logging's hook: the signal's handler runs inside it, and its exit is swallowed
        if not fired:
            fired.append(1)
            os.kill(os.getpid(), signal.SIGTERM)
            sum(range(1000))
    os.register_at_fork(after_in_parent=hook)
    tmp = Path(sys.argv[1])
    run_child([str(tmp / "main")], tmp, tmp / "stderr.log", [], idle_timeout_s=300, timeout_s=600)
    print("the query ran to its end", flush=True)
""")


def test_a_signal_swallowed_while_spawning_still_stops_the_query(tmp_path):
    import psutil

    main = tmp_path / "main"
    main.write_text(f"#!/bin/sh\necho $$ > {tmp_path}/pid\nexec sleep 600\n")
    main.chmod(0o755)
    res = subprocess.run([sys.executable, "-c", SIGNAL_IN_AN_AT_FORK_HOOK, str(tmp_path)], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 143, res.stdout + res.stderr
    assert "Exception ignored" not in res.stderr and "Traceback" not in res.stderr, res.stderr
    if (tmp_path / "pid").exists() and (tmp_path / "pid").read_text().strip():
        pid = int((tmp_path / "pid").read_text())
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
