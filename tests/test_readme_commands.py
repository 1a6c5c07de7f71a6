"""Every `edgebench` command the README and docs/ show exists as typed: its subcommand answers
--help, and each option it shows is one that subcommand takes (hidden aliases do not count)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from orchestrator.cli import main

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "workloads" / "README.md",
        REPO / "reports" / "README.md"]
# `edgebench WORDS` in inline code, or on a line of a fenced block
_INLINE = re.compile(r"`(edgebench [^`]+)`")
_FENCED = re.compile(r"^\s*(?:\$ )?(?:\.venv/bin/)?(edgebench [^#\n]+)", re.M)


def shown() -> list[tuple[str, str]]:
    out = []
    for path in DOCS:
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        blocks = re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
        found = _INLINE.findall(text) + [m for b in blocks for m in _FENCED.findall(b)]
        out += [(path.name, cmd.strip()) for cmd in found]
    return out


def resolve(words: list[str]) -> tuple[click.Command, list[str]]:
    """The (sub)command the words name, and the words after it."""
    cmd: click.Command = main
    rest = words
    while isinstance(cmd, click.Group) and rest:
        sub = cmd.get_command(click.Context(cmd), rest[0])  # the group loads its commands lazily
        if sub is None:
            break
        cmd, rest = sub, rest[1:]
    return cmd, rest


def options_of(cmd: click.Command) -> set[str]:
    return {o for p in cmd.params if isinstance(p, click.Option) and not p.hidden for o in p.opts + p.secondary_opts}


@pytest.mark.parametrize(("doc", "line"), shown(), ids=lambda x: x[:60])
def test_a_command_the_docs_show_exists_as_typed(doc, line):
    words = line.split()[1:]
    cmd, rest = resolve(words)
    assert cmd is not main or not words or words[0].startswith("-"), f"{doc}: no subcommand {words[0]!r}"
    # after `--`, the words belong to the command a batch runs: check those against `run`
    if "--" in rest:
        inner = rest[rest.index("--") + 1:]
        rest = rest[:rest.index("--")]
        if inner and main.get_command(click.Context(main), inner[0]) is not None:
            sub, inner_rest = resolve(inner)
            for w in inner_rest:
                if w.startswith("--") and w != "--":
                    assert w.split("=")[0] in options_of(sub) | {"--help"}, f"{doc}: {line}: {w}"
    for w in rest:
        if w.startswith("--"):
            opt = w.split("=")[0].rstrip(".,;:)]")
            assert opt in options_of(cmd) | {"--help"}, f"{doc}: `{line}`: {cmd.name} has no option {opt}"


def test_the_docs_show_many_commands():
    assert len(shown()) >= 30
