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


def choices_of(cmd: click.Command, opt: str) -> tuple[str, ...]:
    """The values a Choice option takes (`--format table|json`), else ()."""
    for p in cmd.params:
        if opt in p.opts and isinstance(p.type, click.Choice):
            return tuple(p.type.choices)
    return ()


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
    for i, w in enumerate(rest):
        if w.startswith("--"):
            opt = w.split("=")[0].rstrip(".,;:)]")
            assert opt in options_of(cmd) | {"--help"}, f"{doc}: `{line}`: {cmd.name} has no option {opt}"
            value = w.partition("=")[2] or (rest[i + 1] if i + 1 < len(rest) else "")
            choices = choices_of(cmd, opt)
            if choices and value and not value.startswith("-"):
                assert value in choices, f"{doc}: `{line}`: {opt} takes {'|'.join(choices)}, not {value!r}"


def test_the_docs_show_many_commands():
    assert len(shown()) >= 30


def test_the_readme_fits_a_first_hour():
    """Issue 17: the README keeps what a first hour needs; the rest lives in docs/."""
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 180, f"README.md has {len(lines)} lines; move a section into docs/ and link it"
    first = [line.split("#")[0].strip() for line in lines[:8]]
    assert "make run" in first and "make test" in first, "README.md must open with `make run` and `make test`"


_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _links(path: Path) -> set[Path]:
    return {(path.parent / m).resolve() for m in _LINK.findall(path.read_text(encoding="utf-8"))
            if "://" not in m}


def test_every_document_is_linked_and_every_link_resolves():
    """A document nobody links is lost, and a link to a moved one is a dead end: every docs/*.md is
    linked from both the README and docs/README.md, and every relative link in them names a file."""
    readme, index = REPO / "README.md", REPO / "docs" / "README.md"
    for doc in sorted((REPO / "docs").glob("*.md")):
        if doc == index:
            continue
        assert doc.resolve() in _links(index), f"docs/README.md does not link {doc.name}"
        assert doc.resolve() in _links(readme), f"README.md does not link docs/{doc.name}"
    for path in [readme, *sorted((REPO / "docs").glob("*.md"))]:
        for target in _links(path):
            assert target.exists(), f"{path.relative_to(REPO)} links {target}, which does not exist"


def test_each_subcommand_the_docs_show_answers_help():
    """`edgebench SUB --help` as a user would type it: exit 0, and it lists every option the docs
    show with SUB (hidden aliases are not listed, so an old spelling fails here)."""
    from click.testing import CliRunner

    wanted: dict[tuple[str, ...], set[str]] = {}
    for _doc, line in shown():
        words = line.split()[1:]
        words = words[:words.index("--")] if "--" in words else words
        cmd, rest = resolve(words)
        path = tuple(words[:len(words) - len(rest)])
        wanted.setdefault(path, set()).update(w.split("=")[0].rstrip(".,;:)]") for w in rest if w.startswith("--"))
    assert len(wanted) >= 10
    for path, opts in sorted(wanted.items()):
        res = CliRunner().invoke(main, [*path, "--help"])
        assert res.exit_code == 0, f"edgebench {' '.join(path)} --help: {res.output}"
        missing = {o for o in opts - {"--help"} if not re.search(re.escape(o) + r"\b", res.output)}
        assert not missing, f"edgebench {' '.join(path)} --help does not list {sorted(missing)}"
