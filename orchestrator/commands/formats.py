"""`--format table|json` for the commands that print a table or a record: a table for people,
one JSON object for programs. The old `--json` flags stay, hidden, for a release, with a warning."""

from __future__ import annotations

import json

import click

FORMATS = ("table", "json")


def format_option(fn):
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
                        help="table for people; json: one JSON object, for programs.")(fn)


def json_alias(fn):
    """The hidden `--json` of a command that had one before `--format`; see chosen()."""
    return click.option("--json", "old_json", is_flag=True, hidden=True)(fn)


def chosen(fmt: str, old_json: bool) -> str:
    if old_json:
        click.echo("warning: --json is now --format json; --json will be removed", err=True)
        return "json"
    return fmt


def echo_json(doc) -> None:
    click.echo(json.dumps(doc, indent=2, sort_keys=True, default=str))
