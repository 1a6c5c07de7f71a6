"""`edgebench cron install|list|remove` against a crontab file that holds other people's lines
(comments, assignments written with spaces, odd spacing, a `%`, no final newline): they must
survive byte for byte. The installed line is then run the way cron runs it, with a bare
environment and /bin/sh, to prove it needs nothing from the shell that installed it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakemain import write_vocab_model

UNRELATED = (
    b"# my crontab, edited by hand\n"
    b"SHELL=/bin/bash\n"
    b'MAILTO = "me@example.org"\n'
    b"   PATH=/usr/bin:/bin\n"
    b"\n"
    b"*/5  *   * * *   /usr/bin/backup   --quiet    # nightly backup\n"
    b"@reboot\t/home/me/start.sh\n"
    b'0 3 * * 1-5\t/usr/bin/date +"\\%F" > /tmp/today\n'
    b"#1 1 1 1 1 disabled # edgebench:not-ours\n"
    b"30 4 * * * run-parts /etc/cron.daily"  # no final newline
)


def eb(root: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, EDGEBENCH_ROOT=str(root))
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def tab(tmp_path) -> Path:
    path = tmp_path / "crontab"
    path.write_bytes(UNRELATED)
    path.chmod(0o600)
    return path


@pytest.fixture
def run_args(tmp_path) -> list[str]:
    model = write_vocab_model(tmp_path / "vocab.gguf")
    wl = tmp_path / "w.jsonl"
    wl.write_text("".join(json.dumps({"id": f"q{i}", "category": "simple", "prompt": f"hello {i}", "max_tokens": 4,
                                      "prompt_tokens_est": 3}) + "\n" for i in range(2)))
    main = tmp_path / "main"
    main.write_text("#!/bin/sh\nexit 0\n")  # writes no -ld YAML: every query fails, quickly
    main.chmod(0o755)
    return ["run", "--binary", str(main), "--model", str(model), "--workload", str(wl), "--limit", "5"]


def ours(tab: Path) -> list[str]:
    return [x for x in tab.read_text().splitlines() if x.rstrip().endswith(("# edgebench:nightly",
                                                                              "# edgebench:weekly"))]


def test_install_list_remove_leave_every_other_line_byte_for_byte(tmp_path, tab, run_args):
    res = eb(tmp_path, "cron", "install", "--schedule", "0 2 * * *", "--crontab-file", str(tab), "--", *run_args)
    assert res.returncode == 0, res.stderr
    assert "installed batch 'nightly'" in res.stdout
    data = tab.read_bytes()
    assert tab.stat().st_mode & 0o777 == 0o600
    assert data.startswith(UNRELATED + b"\n")  # the missing newline was added, nothing else touched
    (line,) = ours(tab)
    assert line.startswith("0 2 * * * cd ")
    assert f"EDGEBENCH_ROOT={tmp_path}" in line and "HOME=" in line and "PATH=" in line and "LANG=" in line
    assert f"{sys.executable} -m orchestrator batch --name nightly -- run --binary" in line
    log = tmp_path / "reports" / "cron" / "nightly.log"
    assert f">> {log} 2>&1 || tail -n 1 {log}" in line

    again = eb(tmp_path, "cron", "install", "--schedule", "@weekly", "--name", "weekly", "--crontab-file", str(tab),
               "--", *run_args, "--category", "100%")
    assert again.returncode == 0, again.stderr
    assert "--category 100\\% " in ours(tab)[1]  # cron would turn a bare % into a newline
    moved = eb(tmp_path, "cron", "install", "--schedule", "15 1 * * *", "--crontab-file", str(tab), "--", *run_args)
    assert "replaced batch 'nightly'" in moved.stdout
    names = [x.rsplit(":", 1)[1] for x in ours(tab)]
    assert names == ["nightly", "weekly"]  # replaced in place, not appended twice
    assert ours(tab)[0].startswith("15 1 * * * ")

    listed = eb(tmp_path, "cron", "list", "--crontab-file", str(tab))
    assert listed.returncode == 0
    assert "nightly: 15 1 * * *" in listed.stdout and "weekly: @weekly" in listed.stdout
    assert "not-ours" not in listed.stdout and "(has not run yet)" in listed.stdout

    gone = eb(tmp_path, "cron", "remove", "weekly", "--crontab-file", str(tab))
    assert gone.returncode == 0 and "removed batch 'weekly'" in gone.stdout
    assert [x.rsplit(":", 1)[1] for x in ours(tab)] == ["nightly"]
    missing = eb(tmp_path, "cron", "remove", "weekly", "--crontab-file", str(tab))
    assert missing.returncode == 1
    assert "no edgebench batch called 'weekly' is scheduled (scheduled: nightly)" in missing.stderr
    assert eb(tmp_path, "cron", "remove", "--crontab-file", str(tab)).returncode == 0
    assert tab.read_bytes() == UNRELATED + b"\n"
    assert "no edgebench batch is scheduled" in eb(tmp_path, "cron", "list", "--crontab-file", str(tab)).stdout


@pytest.mark.parametrize("args, code, message", [
    (["--schedule", "61 * * * *", "--", "run"], 1, "'61 * * * *' is not a cron schedule"),
    (["--schedule", "@daily", "--name", "a b", "--", "run"], 1, "'a b' cannot name a batch"),
    (["--schedule", "@daily", "--", "run", "--limti", "2"], 2, "No such option '--limti'. Did you mean '--limit'?"),
    (["--schedule", "@daily", "--", "run", "--resume", "."], 1, "a batch resumes its own unfinished run by itself"),
    (["--schedule", "@daily", "--", "bench"], 2, "a batch runs `run`"),
    (["--schedule", "@daily", "--", "experiment", "x"], 1, "there is no experiment plan named 'x'"),
    (["--schedule", "@daily", "--", "experiment", "all"], 1, "a batch runs one experiment plan"),
])
def test_install_refuses_what_would_fail_at_night(tmp_path, tab, args, code, message):
    res = eb(tmp_path, "cron", "install", "--crontab-file", str(tab), *args)
    assert res.returncode == code, res.stderr
    assert message in res.stderr
    assert tab.read_bytes() == UNRELATED


def test_a_system_crontab_line_carries_the_user_field(tmp_path, run_args):
    tab = tmp_path / "cron.d" / "edgebench"
    res = eb(tmp_path, "cron", "install", "--schedule", "@daily", "--user", "nano", "--crontab-file", str(tab),
             "--", *run_args)
    assert res.returncode == 0, res.stderr
    assert tab.read_text().startswith("@daily nano cd ")
    listed = eb(tmp_path, "cron", "list", "--system", "--crontab-file", str(tab))
    assert "nightly: @daily as nano" in listed.stdout


def test_the_installed_line_runs_under_a_bare_cron_environment(tmp_path, tab, run_args):
    assert eb(tmp_path, "cron", "install", "--schedule", "@daily", "--crontab-file", str(tab), "--",
              *run_args).returncode == 0
    (line,) = ours(tab)
    command = line.split(" ", 1)[1].replace("\\%", "%")  # what cron hands to /bin/sh
    res = subprocess.run(["env", "-i", "/bin/sh", "-c", command], cwd="/", capture_output=True, text=True,
                         timeout=120, env={"EDGEBENCH_LOCK": str(tmp_path / "lock")})
    log = (tmp_path / "reports" / "cron" / "nightly.log").read_text().splitlines()
    # every query failed (the fake main writes no YAML): exit 3, and cron mails the summary
    assert res.stdout.strip() == log[-1]
    assert "batch nightly (run --binary" in log[-1] and "0 ok, 2 failed, 2/2 recorded" in log[-1]
    assert sum(" batch nightly (" in x for x in log) == 1  # printed into the log once, not appended again
    assert log[-1].endswith("exit 3")
    assert any(x.startswith("[2/2] q1 error") for x in log)
    listed = eb(tmp_path, "cron", "list", "--crontab-file", str(tab))
    assert f"last: {log[-1]}" in listed.stdout


def test_the_users_crontab_goes_through_the_crontab_program(tmp_path, run_args):
    """`crontab` is a fake on PATH here (the OS boundary): -l prints the table or says there
    is none, - replaces it from stdin."""
    store = tmp_path / "spool"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "crontab"
    fake.write_text(f"""#!/bin/sh
if [ "$1" = "-l" ]; then
  [ -f {store} ] || {{ echo "no crontab for $(id -un)" >&2; exit 1; }}
  exec cat {store}
fi
[ "$1" = "-" ] && exec cat > {store}
exit 2
""")
    fake.chmod(0o755)
    env = dict(os.environ, EDGEBENCH_ROOT=str(tmp_path), PATH=f"{bin_dir}:{os.environ['PATH']}")

    def cron(*args):
        return subprocess.run([sys.executable, "-m", "orchestrator", "cron", *args], env=env, capture_output=True,
                              text=True, timeout=60)

    assert "no edgebench batch is scheduled" in cron("list").stdout
    res = cron("install", "--schedule", "@daily", "--", *run_args)
    assert res.returncode == 0, res.stderr
    assert "in the crontab of this user" in res.stdout and store.read_text().startswith("@daily cd ")
    store.write_text("MAILTO=me\n" + store.read_text())
    assert cron("remove", "nightly").returncode == 0
    assert store.read_text() == "MAILTO=me\n"
    bare = dict(env, PATH="/nonexistent")
    res = subprocess.run([sys.executable, "-m", "orchestrator", "cron", "list"], env=bare, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 1 and "there is no `crontab` program on this machine" in res.stderr
    assert "fix: sudo apt-get install cron, or --crontab-file FILE" in res.stderr
