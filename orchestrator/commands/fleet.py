"""`edgebench fleet deploy|run|collect`: the playbooks in deploy/ through Ansible's `ansible-playbook`,
whose output passes through untouched (docs/fleet.md)."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import click

from orchestrator import cliopts
from orchestrator.fleet import EXIT_HELP

WHAT = {
    "deploy": "Get edgebench at its revision on every board, bootstrap it, and install or remove its cron batch.",
    "run": "Run the inventory's batch now on every board; a board whose batch already finished changes nothing, "
           "one a failure stopped resumes.",
    "collect": "Copy every finished run folder the boards hold into reports/fleet/<host>/; one already there is "
               "never copied again.",
}


def _options(fn):
    fn = click.option("-e", "--extra-vars", "extra", multiple=True, metavar="KEY=VALUE",
                      help="An Ansible extra variable (repeatable; wins over the inventory's), e.g. "
                           "-e edgebench_batch=nightly-2.")(fn)
    fn = click.option("--limit", default=None, metavar="HOST",
                      help="Only these hosts or groups (Ansible's --limit pattern).")(fn)
    fn = click.option("--check", is_flag=True,
                      help="Say what would change on each board, change nothing (Ansible's --check --diff).")(fn)
    fn = cliopts.reports_dir_option("With collect: the controller's folder whose fleet/<host>/ receives the runs "
                                    "(default: reports/).", alias_of=())(fn)
    return click.option("-i", "--inventory", required=True, type=click.Path(path_type=Path, exists=True),
                        help="The Ansible inventory (INI or YAML file, or a folder) naming the boards.")(fn)


@click.group(cls=cliopts.Group)
def fleet():
    """Many boards through Ansible: deploy, run and collect with the playbooks in deploy/."""


def _play(action: str, inventory: Path, check: bool, limit: str | None, extra: tuple[str, ...], reports_dir) -> None:
    from orchestrator import fleet as lib
    from orchestrator import paths

    fleet_dir = (reports_dir or paths.reports_dir()) / lib.FLEET_FOLDER
    cmd = lib.argv(action, inventory, check=check, limit=limit, extra=extra, fleet_dir=fleet_dir)
    click.echo(f"fleet {action}: {shlex.join(cmd)}")
    sys.stdout.flush()  # our line before Ansible's, which writes to the same terminal
    rc = subprocess.run(cmd, check=False).returncode
    code = lib.exit_code(rc)
    if code:
        click.echo(f"fleet {action}: ansible-playbook exited {rc} (exit {code}); the failed host and step are "
                   "named above (fatal: [HOST] under TASK [edgebench : STEP])", err=True)
    sys.exit(code)


def _action(name: str):
    @fleet.command(name, help=WHAT[name], epilog=EXIT_HELP)
    @_options
    def cmd(inventory, reports_dir, check, limit, extra):
        _play(name, inventory, check, limit, extra, reports_dir)

    return cmd


deploy = _action("deploy")
run = _action("run")
collect = _action("collect")
