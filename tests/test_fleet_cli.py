"""`edgebench fleet deploy|run|collect`: the command line it hands ansible-playbook, the output passed
through, the exit code mapped from Ansible's, and the messages when Ansible or an option is wrong. Here
ansible-playbook is a script that records its argv (the OS boundary); test_fleet_ssh.py runs the real one.
Also the playbooks' own syntax, checked by the real ansible-playbook where the fleet extra is installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator import exitcodes
from orchestrator.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def fake_ansible(tmp_path, monkeypatch):
    """An ansible-playbook that writes its argv to argv.json, prints a recap, and exits with $FAKE_RC."""
    script = tmp_path / "ansible-playbook"
    script.write_text(f"""#!{sys.executable}
import json, os, sys
json.dump(sys.argv[1:], open({str(tmp_path / 'argv.json')!r}, "w"))
print("PLAY RECAP *****")
print("host1 : ok=3 changed=0 unreachable=0 failed=0")
sys.exit(int(os.environ.get("FAKE_RC", "0")))
""")
    script.chmod(0o755)
    monkeypatch.setenv("EDGEBENCH_ANSIBLE_PLAYBOOK", str(script))
    monkeypatch.setenv("EDGEBENCH_ROOT", str(tmp_path))
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("[boards]\nhost1 ansible_host=127.0.0.1\n")
    return tmp_path, inventory


def fleet(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Through a child process: the command's own output and Ansible's share its stdout, in order."""
    return subprocess.run([sys.executable, "-m", "orchestrator", "fleet", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_deploy_prints_and_runs_ansible_playbook_with_the_inventory_and_options(fake_ansible):
    tmp, inventory = fake_ansible
    res = fleet("deploy", "-i", str(inventory), "--check", "--limit", "host1", "-e", "edgebench_batch=night-2")
    assert res.returncode == 0, res.stderr
    first, *rest = res.stdout.splitlines()
    assert first.startswith(f"fleet deploy: {tmp / 'ansible-playbook'} -i {inventory} {REPO / 'deploy' / 'deploy.yml'}")
    assert rest == ["PLAY RECAP *****", "host1 : ok=3 changed=0 unreachable=0 failed=0"]  # Ansible's, untouched
    argv = json.loads((tmp / "argv.json").read_text())
    assert argv[:3] == ["-i", str(inventory), str(REPO / "deploy" / "deploy.yml")]
    ours = json.loads(argv[argv.index("-e") + 1])
    assert ours == {"edgebench_fleet_dir": str(tmp / "reports" / "fleet")}
    # the user's -e comes after ours, so that it wins (Ansible's last -e wins)
    assert argv.index("edgebench_batch=night-2") > argv.index("-e") + 1
    assert "--check" in argv and argv[argv.index("--limit") + 1] == "host1"


@pytest.mark.parametrize(("action", "playbook"), [("run", "run.yml"), ("collect", "collect.yml")])
def test_each_action_plays_its_playbook_and_reports_dir_moves_the_fleet_folder(fake_ansible, action, playbook):
    tmp, inventory = fake_ansible
    res = fleet(action, "-i", str(inventory), "--reports-dir", str(tmp / "elsewhere"))
    assert res.returncode == 0, res.stderr
    argv = json.loads((tmp / "argv.json").read_text())
    assert argv[2] == str(REPO / "deploy" / playbook) and "--check" not in argv
    assert json.loads(argv[4]) == {"edgebench_fleet_dir": str(tmp / "elsewhere" / "fleet")}


@pytest.mark.parametrize(("ansible_rc", "code"), [(2, exitcodes.FAILED_QUERIES), (3, exitcodes.FAILED_QUERIES),
                                                  (4, exitcodes.USAGE), (5, exitcodes.USAGE),
                                                  (99, exitcodes.INTERRUPTED), (250, exitcodes.ERROR)])
def test_ansible_playbooks_exit_status_maps_onto_edgebenchs(fake_ansible, ansible_rc, code):
    _, inventory = fake_ansible
    res = fleet("run", "-i", str(inventory), env={"FAKE_RC": str(ansible_rc)})
    assert res.returncode == code
    assert f"ansible-playbook exited {ansible_rc} (exit {code})" in res.stderr
    assert "fatal: [HOST]" in res.stderr  # where to look for the failed host and step


def test_a_missing_ansible_playbook_names_the_extra_that_installs_it(tmp_path, monkeypatch):
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("[boards]\nhost1\n")
    monkeypatch.delenv("EDGEBENCH_ANSIBLE_PLAYBOOK", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))  # no ansible-playbook beside it
    res = CliRunner().invoke(main, ["fleet", "deploy", "-i", str(inventory)])
    assert res.exit_code == exitcodes.ERROR
    assert "runs Ansible's ansible-playbook, which is not installed here" in res.output
    assert "fix: " in res.output and "[fleet]" in res.output and "Traceback" not in res.output


def test_a_wrong_ansible_playbook_variable_and_a_malformed_extra_var_are_refused(fake_ansible, tmp_path):
    _, inventory = fake_ansible
    res = fleet("deploy", "-i", str(inventory), env={"EDGEBENCH_ANSIBLE_PLAYBOOK": str(tmp_path / "nope")})
    assert res.returncode == exitcodes.ERROR
    assert "EDGEBENCH_ANSIBLE_PLAYBOOK=" in res.stderr and "is not an executable file" in res.stderr
    res = fleet("deploy", "-i", str(inventory), "-e", "no equals sign")
    assert res.returncode == exitcodes.ERROR
    assert "an extra variable is KEY=VALUE" in res.stderr and "fix: -e edgebench_batch=" in res.stderr
    assert not (tmp_path / "argv.json").exists()  # nothing was played


def test_an_inventory_that_is_not_there_is_a_usage_error(fake_ansible, tmp_path):
    res = fleet("collect", "-i", str(tmp_path / "missing.ini"))
    assert res.returncode == exitcodes.USAGE
    assert "missing.ini" in res.stderr and "does not exist" in res.stderr


def test_the_playbooks_pass_ansibles_own_syntax_check(tmp_path):
    ansible = Path(sys.executable).parent / "ansible-playbook"
    if not ansible.is_file():
        pytest.skip("the fleet extra is not installed here (pip install -e '.[fleet]')")
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("[boards]\nhost1 ansible_host=127.0.0.1\n")
    for playbook in ("deploy.yml", "run.yml", "collect.yml"):
        res = subprocess.run([str(ansible), "--syntax-check", "-i", str(inventory), str(REPO / "deploy" / playbook)],
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stdout + res.stderr


def test_the_readmes_inventory_for_a_nano_and_an_orin_is_one_ansible_reads(tmp_path):
    inventory_cmd = Path(sys.executable).parent / "ansible-inventory"
    if not inventory_cmd.is_file():
        pytest.skip("the fleet extra is not installed here (pip install -e '.[fleet]')")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("## A lab of boards", 1)[1].split("```ini\n", 1)[1].split("```", 1)[0]
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(block)
    res = subprocess.run([str(inventory_cmd), "-i", str(inventory), "--list"], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["nano"]["hosts"] == ["nano-1"] and doc["orin"]["hosts"] == ["orin-1"]
    nano, orin = doc["_meta"]["hostvars"]["nano-1"], doc["_meta"]["hostvars"]["orin-1"]
    assert nano["edgebench_gcc_tarball"].endswith(".tar.gz") and nano["edgebench_bootstrap_args"].split() == [
        "--make-swap", "--max-power"]
    assert "edgebench_gcc_tarball" not in orin and orin["ansible_user"] == "nvidia"
    assert nano["edgebench_source"] == orin["edgebench_source"]  # [all:vars]
    assert "ansible_python_interpreter" not in doc.get("all", {}).get("vars", {})  # localhost reads all's vars


def test_cron_install_of_an_identical_line_changes_nothing_and_says_unchanged(tmp_path, monkeypatch):
    """What the deploy play reads to report `changed=0` for the cron step."""
    monkeypatch.setenv("EDGEBENCH_ROOT", str(tmp_path))
    tab = tmp_path / "crontab"
    tab.write_text("MAILTO=me\n")
    args = ["cron", "install", "--schedule", "0 2 * * *", "--crontab-file", str(tab), "--", "run", "--limit", "2"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0 and first.output.startswith("installed batch 'nightly'"), first.output
    before = tab.read_bytes()
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0 and again.output.startswith("unchanged: batch 'nightly'"), again.output
    assert tab.read_bytes() == before
    other = CliRunner().invoke(main, [*args[:3], "0 3 * * *", *args[4:]])
    assert other.output.startswith("replaced batch 'nightly'") and b"0 3 * * *" in tab.read_bytes()
