"""`edgebench fleet` for real: Ansible's ansible-playbook drives deploy/'s playbooks over SSH (a real
sshd on 127.0.0.2-4, tests/sshd.py) against three boards, each its own checkout of this tree cloned from
a git bundle, measuring with the real llama.cpp binary and the tiny twin; then the merged report.

To stay small, the three boards skip `make venv` and `make bootstrap` (edgebench_venv: this test's
Python; edgebench_bootstrap: false) and measure with the built binary and twin (--binary, --model): what
the play itself does (clone, cron, batch, resume, collect, idempotence, a failing host) is all real. One
more board bootstraps for real (llama.cpp built once from the cached source), twice: the second finds
it done. `make venv` on a board (a pip install of the report stack) stays out of the suite."""

from __future__ import annotations

import getpass
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sshd import Sshd, cannot
from waiting import HANG_S

from orchestrator.store import MANIFEST

REPO = Path(__file__).resolve().parents[1]
HOSTS = {"host1": "127.0.0.2", "host2": "127.0.0.3", "host3": "127.0.0.4"}
CONTROL_DIR = "ansible-cp"
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP's counts per host (the last play's, where a playbook has several)."""
    out = {}
    for host, ok, changed, unreachable, failed in RECAP.findall(output):
        out[host] = {"ok": int(ok), "changed": int(changed), "unreachable": int(unreachable), "failed": int(failed)}
    return out


def snapshot(dest: Path) -> Path:
    """This working tree as one commit of a repository of its own (tracked and new files, as they are now):
    what the boards get, whether or not the tree under test is committed."""
    files = subprocess.run(["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard", "-z"], check=True,
                           capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file() and not src.is_symlink():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    git = ["git", "-C", str(dest), "-c", "user.name=edgebench tests", "-c", "user.email=tests@localhost"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "snapshot"], check=True)
    return dest


def workload(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": f"{cat}-01", "category": cat, "prompt": f"Say {cat} things.",
                                        "max_tokens": 6, "prompt_tokens_est": 6}) + "\n"
                            for cat in ("simple", "complex")))
    return path


class Lab:
    """A loopback sshd for `addresses`, and `edgebench fleet` played against an inventory written here."""

    def __init__(self, tmp: Path, addresses: tuple[str, ...]):
        self.tmp = tmp
        if not (Path(sys.executable).parent / "ansible-playbook").is_file():
            cannot("ansible-core is not installed beside this Python (pip install -e '.[fleet]'; it needs 3.11+)")
        self.server = Sshd(tmp / "sshd", addresses)
        self.inventory = tmp / "inventory.yml"
        self.controller = tmp / "controller"
        self.env = {**os.environ, "EDGEBENCH_ROOT": str(self.controller), "ANSIBLE_NOCOLOR": "1",
                    "ANSIBLE_LOCAL_TEMP": str(tmp / "ansible-local"),
                    "ANSIBLE_REMOTE_TEMP": str(tmp / "ansible-remote"),
                    "ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp / CONTROL_DIR)}

    def write_inventory(self, boards: dict, common: dict) -> None:
        """Every board logs in as this user over the lab's sshd; the source is a snapshot of this tree."""
        self.inventory.write_text(json.dumps({"boards": {"hosts": boards, "vars": {
            "ansible_port": self.server.port, "ansible_user": getpass.getuser(),
            "ansible_ssh_private_key_file": str(self.server.key),
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
            "ansible_python_interpreter": sys.executable, "edgebench_version": "HEAD", **common}}}))

    def fleet(self, action: str, *more: str) -> subprocess.CompletedProcess:
        res = subprocess.run([sys.executable, "-m", "orchestrator", "fleet", action, "-i", str(self.inventory), *more],
                             env=self.env, capture_output=True, text=True, timeout=HANG_S)
        print(res.stdout[-6000:], res.stderr[-3000:])
        return res

    def close(self) -> None:
        # Ansible's ssh keeps a master connection per host for a while (ControlPersist): end ours now
        for sock in (self.tmp / CONTROL_DIR).glob("*"):
            subprocess.run(["ssh", "-O", "exit", "-o", f"ControlPath={sock}", "host"], capture_output=True, timeout=60)
        self.server.close()


@pytest.fixture
def lab(tmp_path, llama_bin_dir, tiny_model):
    lab = Lab(tmp_path, tuple(HOSTS.values()))
    try:
        yield lab, llama_bin_dir / "main", tiny_model
    finally:
        lab.close()


def test_three_boards_deploy_run_collect_and_merge_over_ssh(lab):
    lab, binary, model = lab
    tmp, controller, fleet = lab.tmp, lab.controller, lab.fleet
    source = snapshot(tmp / "source")
    shared = workload(tmp / "workload.jsonl")
    late = tmp / "late" / "workload.jsonl"  # host3's, absent until its first run has failed
    measure = ["--binary", str(binary), "--model", str(model), "--limit", "1", "--threads", "1"]
    boards = {}
    for host, address in HOSTS.items():
        home = tmp / "boards" / host
        boards[host] = {
            "ansible_host": address,
            "edgebench_dir": str(home / "edgebench"),
            "edgebench_env": {"EDGEBENCH_LOCK": str(home / "measure.lock")},  # three "boards", one machine
            "edgebench_crontab_file": str(home / "crontab"),
            "edgebench_batch_args": ["run", *measure, "--workload", str(late if host == "host3" else shared)],
        }
    lab.write_inventory(boards, {
        "edgebench_source": str(source), "edgebench_venv": sys.prefix, "edgebench_bootstrap": False,
        "edgebench_cron": {"name": "nightly", "schedule": "0 2 * * *", "args": ["run", *measure, "--workload",
                                                                                 str(shared)]}})
    env = lab.env

    # --check before the first deploy: it says what would change and changes nothing on the boards
    dry = fleet("deploy", "--check")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert all(c["changed"] > 0 for c in recap(dry.stdout).values()) and len(recap(dry.stdout)) == 3
    assert not any((tmp / "boards" / host).exists() for host in HOSTS)

    res = fleet("deploy")
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.startswith("fleet deploy: ") and "ansible-playbook" in res.stdout.splitlines()[0]
    commit = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], check=True, capture_output=True,
                            text=True).stdout.strip()
    for board in boards.values():
        checkout = Path(board["edgebench_dir"])
        assert subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip() == commit
        assert (checkout / "orchestrator" / "fleet.py").is_file()
        tab = Path(board["edgebench_crontab_file"]).read_text()
        assert tab.count("# edgebench:nightly") == 1 and f"EDGEBENCH_ROOT={checkout}" in tab

    again = fleet("deploy")
    assert again.returncode == 0, again.stdout + again.stderr
    assert {h: c["changed"] for h, c in recap(again.stdout).items()} == {h: 0 for h in HOSTS}
    check = fleet("deploy", "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert {h: c["changed"] for h, c in recap(check.stdout).items()} == {h: 0 for h in HOSTS}

    # host3 fails half-way (its workload is not there yet): named with its step; the others finish
    run = fleet("run")
    assert run.returncode == 3, run.stdout + run.stderr
    assert "fatal: [host3]" in run.stdout and "TASK [edgebench : run | batch now" in run.stdout
    counts = recap(run.stdout)
    assert counts["host3"]["failed"] == 1 and counts["host1"]["failed"] == counts["host2"]["failed"] == 0
    collect = fleet("collect")
    assert collect.returncode == 0, collect.stdout + collect.stderr
    fleet_dir = controller / "reports" / "fleet"
    runs = {h: sorted(p.name for p in (fleet_dir / h).iterdir() if (p / MANIFEST).is_file())
            for h in HOSTS if (fleet_dir / h).is_dir()}
    assert sorted(runs) == ["host1", "host2"] and all(len(r) == 1 for r in runs.values())

    # a second play: host1 and host2 change nothing, host3 finishes what the first left
    workload(late)
    run = fleet("run")
    assert run.returncode == 0, run.stdout + run.stderr
    assert {h: c["changed"] for h, c in recap(run.stdout).items()} == {"host1": 0, "host2": 0, "host3": 1}
    collect = fleet("collect")
    assert collect.returncode == 0, collect.stdout + collect.stderr
    counts = recap(collect.stdout)
    assert counts["host1"]["changed"] == counts["host2"]["changed"] == 0  # never copied twice
    assert counts["host3"]["changed"] > 0
    folders = sorted(p for h in HOSTS for p in (fleet_dir / h).iterdir() if (p / MANIFEST).is_file())
    assert len(folders) == 3
    for run_dir in folders:
        records = [json.loads(x) for x in (run_dir / "queries.jsonl").read_text().splitlines()]
        assert [r["status"] for r in records] == ["ok", "ok"]
        manifest = json.loads((run_dir / MANIFEST).read_text())
        assert manifest["status"] == "finished" and manifest["batch"]["name"] == "fleet"

    merged = subprocess.run([sys.executable, "-m", "orchestrator", "report", "--merge", *map(str, folders)],
                            env=env, capture_output=True, text=True, timeout=HANG_S)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    page = (fleet_dir / "merged.html").read_text()
    assert merged.stdout.strip() == f"merged: {fleet_dir / 'merged.html'}"
    for host in HOSTS:
        assert f'<tr data-board="{host}"><td>{host}</td>' in page
    assert page.count('class="present"') == 2  # TTFT and TBT, faceted by board


def test_deploy_bootstraps_a_board_once_and_a_second_deploy_changes_nothing(tmp_path, llama_bin_dir, tiny_model):
    """The bootstrap step for real on one board: its dry run lists the steps to do, `edgebench bootstrap`
    builds llama.cpp from a local source with the board's options, and the next deploy finds it done."""
    lab = Lab(tmp_path, ("127.0.0.5",))
    try:
        checkout = tmp_path / "board" / "edgebench"
        lab.write_inventory({"board": {"ansible_host": "127.0.0.5", "edgebench_dir": str(checkout)}}, {
            "edgebench_source": str(snapshot(tmp_path / "source")), "edgebench_venv": sys.prefix,
            # an INI inventory's [group:vars] string, split on spaces by the role
            "edgebench_bootstrap_args": f"--llama-source {llama_bin_dir} --model {tiny_model}"})
        first = lab.fleet("deploy")
        assert first.returncode == 0, first.stdout + first.stderr
        step = first.stdout.split("TASK [edgebench : bootstrap | make bootstrap", 1)[1].split("TASK [", 1)[0]
        assert "changed: [board]" in step
        ledger = json.loads((checkout / "build" / "ledger.json").read_text())
        assert (checkout / "build" / "llama.cpp" / "main").is_file() and "build" in json.dumps(ledger)
        again = lab.fleet("deploy")
        assert again.returncode == 0, again.stdout + again.stderr
        assert recap(again.stdout)["board"]["changed"] == 0
    finally:
        lab.close()
