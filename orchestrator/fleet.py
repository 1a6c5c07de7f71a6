"""`edgebench fleet`: many boards through Ansible's own `ansible-playbook` and the playbooks in deploy/.
edgebench has no remote-execution code of its own: this module only finds the playbooks and the
program, spells the command line (an argv list, never a shell), and reads its exit status."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from orchestrator import exitcodes, extras, paths
from orchestrator.errors import UserError

# action -> the playbook in deploy/ that does it
PLAYBOOKS = {
    "deploy": "deploy.yml",
    "run": "run.yml",
    "collect": "collect.yml",
}
PROGRAM = "ansible-playbook"
PROGRAM_VAR = "EDGEBENCH_ANSIBLE_PLAYBOOK"
# The variable that tells collect.yml where the controller keeps the boards' runs (reports/fleet/<host>/).
FLEET_DIR_VAR = "edgebench_fleet_dir"
FLEET_FOLDER = "fleet"

# ansible-playbook's exit status (ansible-core's documented codes) -> edgebench's (exitcodes.py)
ANSIBLE_OK = 0
ANSIBLE_HOST_FAILED = 2
ANSIBLE_UNREACHABLE = 3
ANSIBLE_PARSER_ERROR = 4
ANSIBLE_BAD_OPTIONS = 5
ANSIBLE_INTERRUPTED = 99
EXIT_OF = {
    ANSIBLE_OK: exitcodes.OK,
    # the play went on for the other hosts: like a run whose queries partly failed
    ANSIBLE_HOST_FAILED: exitcodes.FAILED_QUERIES,
    ANSIBLE_UNREACHABLE: exitcodes.FAILED_QUERIES,
    ANSIBLE_PARSER_ERROR: exitcodes.USAGE,
    ANSIBLE_BAD_OPTIONS: exitcodes.USAGE,
    ANSIBLE_INTERRUPTED: exitcodes.INTERRUPTED,
}
EXIT_HELP = (f"\b\nExit codes: {exitcodes.OK} every host did every step; {exitcodes.FAILED_QUERIES} some hosts failed "
             f"a step or could not be reached (ansible-playbook's {ANSIBLE_HOST_FAILED} and {ANSIBLE_UNREACHABLE}; "
             f"the others finished); {exitcodes.USAGE} a malformed command line, inventory or playbook "
             f"(ansible-playbook's {ANSIBLE_PARSER_ERROR} and {ANSIBLE_BAD_OPTIONS}); {exitcodes.INTERRUPTED} "
             f"interrupted ({ANSIBLE_INTERRUPTED}); {exitcodes.ERROR} any other failure.")


def exit_code(ansible_rc: int) -> int:
    if ansible_rc < 0:  # killed by a signal (subprocess's convention)
        return exitcodes.for_signal(-ansible_rc)
    return EXIT_OF.get(ansible_rc, exitcodes.ERROR)


def playbooks_dir() -> Path:
    """deploy/ of the checkout edgebench runs from (the playbooks are not part of a wheel)."""
    for root in (extras.checkout(), paths.project_root()):
        if root is not None and (root / "deploy" / PLAYBOOKS["deploy"]).is_file():
            return root / "deploy"
    raise UserError("the fleet playbooks (deploy/) are not here: they ship with edgebench's source, not its wheel",
                    fix="run edgebench fleet from a clone of edgebench (git clone ..., then make venv)")


def program() -> str:
    """EDGEBENCH_ANSIBLE_PLAYBOOK, else ansible-playbook from this environment (a venv's bin, which need not
    be on PATH), else PATH."""
    chosen = os.environ.get(PROGRAM_VAR)
    if chosen:
        if not (Path(chosen).is_file() and os.access(chosen, os.X_OK)):
            raise UserError(f"{PROGRAM_VAR}={chosen} is not an executable file",
                            fix=f"unset {PROGRAM_VAR}, or point it at Ansible's {PROGRAM} (command -v {PROGRAM})")
        return chosen
    beside = Path(sys.executable).parent / PROGRAM
    if beside.is_file():
        return str(beside)
    found = shutil.which(PROGRAM)
    if found:
        return found
    raise UserError(f"edgebench fleet runs Ansible's {PROGRAM}, which is not installed here",
                    fix=f"{extras.install_command('fleet')}  (ansible-core; or Debian's: apt-get install ansible)")


def parse_extra(items: tuple[str, ...]) -> list[str]:
    """-e k=v items, checked here so that a typo is ours to name, then handed on as they are."""
    for item in items:
        key = item.split("=", 1)[0]
        if item.startswith("@") or item.lstrip().startswith("{"):
            continue  # Ansible's own @file and JSON forms
        if "=" not in item or not key.isidentifier():
            raise UserError(f"-e {item!r}: an extra variable is KEY=VALUE (or @FILE, or a JSON object)",
                            fix="-e edgebench_batch=nightly-2")
    return list(items)


def argv(action: str, inventory: Path, *, check: bool = False, limit: str | None = None,
         extra: tuple[str, ...] = (), fleet_dir: Path | None = None, ansible: str | None = None) -> list[str]:
    """The ansible-playbook command line for `action`. Our variables come first so that the
    user's -e, given last, wins (Ansible's last -e wins)."""
    if action not in PLAYBOOKS:
        raise UserError(f"no fleet action {action!r}", fix=f"edgebench fleet {'|'.join(PLAYBOOKS)}")
    fleet_dir = Path(fleet_dir) if fleet_dir else paths.reports_dir() / FLEET_FOLDER
    cmd = [ansible or program(), "-i", str(inventory), str(playbooks_dir() / PLAYBOOKS[action]),
           "-e", json.dumps({FLEET_DIR_VAR: str(fleet_dir.absolute())})]
    for item in parse_extra(extra):
        cmd += ["-e", item]
    if check:
        cmd += ["--check", "--diff"]
    if limit:
        cmd += ["--limit", limit]
    return cmd
