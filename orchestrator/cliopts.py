"""The command line's grammar, shared by the commands: the reports folder (`--reports-dir`),
`--format`, options whose default RunConfig owns, and old spellings kept as hidden aliases that
warn once. Commands import this; it imports no command."""

from __future__ import annotations

import json
from pathlib import Path

import click

FORMATS = ("table", "json", "csv", "md")
FORMAT_HELP = "table for people; json: one JSON object (docs/cli.md); csv or md: the table's rows."


class Command(click.Command):
    """A command with hidden aliases (see alias()): an alias's value goes to its parameter, with
    one warning on stderr; an alias and its new spelling together are a usage error."""

    def parse_args(self, ctx, args):
        rest = super().parse_args(ctx, args)
        for p in self.params:
            target = getattr(p, "alias_of", None)
            if target is None or p.name not in ctx.params:
                continue
            value, source = ctx.params.pop(p.name), ctx.get_parameter_source(p.name)
            if value is None or source in (None, click.core.ParameterSource.DEFAULT) or value == ():
                continue
            new = next(q for q in self.params if q.name == target)
            if ctx.get_parameter_source(target) not in (None, click.core.ParameterSource.DEFAULT):
                raise click.UsageError(f"{p.opts[0]} is the old spelling of {new.opts[0]}: give one of them", ctx)
            click.echo(f"warning: {p.opts[0]} is now {new.opts[0]}; {p.opts[0]} will be removed", err=True)
            ctx.params[target] = value
            ctx.set_parameter_source(target, source)
        return rest


class Group(click.Group):
    command_class = Command


def alias(old: str, target: str, **kw):
    """A hidden option `old` that stands for the parameter `target` (commands built with
    cls=Command, or in a Group from this module)."""
    def deco(fn):
        opt = click.Option([old, f"{target}__{old.lstrip('-').replace('-', '_')}"], hidden=True, **kw)
        opt.alias_of = target
        if not hasattr(fn, "__click_params__"):
            fn.__click_params__ = []
        fn.__click_params__.append(opt)
        return fn
    return deco


def reports_dir_option(help="Folder that receives the run folder (default: reports/).", *, alias_of=("--out",)):
    """`--reports-dir DIR`, with the command's old spellings as hidden aliases."""
    kind = click.Path(path_type=Path, file_okay=False)

    def deco(fn):
        for old in alias_of:
            fn = alias(old, "reports_dir", type=kind, default=None)(fn)
        return click.option("--reports-dir", "reports_dir", type=kind, default=None, help=help)(fn)
    return deco


def target_options(fn=None, *, engines: tuple[str, ...] | None = None):
    """`--workload`, `--model`, `--engine`, `--binary`: what a measuring command runs, each defaulting to
    what bootstrap set up (run and experiment spell them alike). `engines`: the only engines a command
    measures (load: the server), so its --help offers no other."""
    from orchestrator.engine import registry

    names = tuple(engines or registry.NAMES)
    first = registry.ENGINES[names[0]]

    def deco(fn):
        path = click.Path(path_type=Path, dir_okay=False)
        fn = click.option("--binary", type=path, default=None,
                          help=f"The engine's program (default: where bootstrap built it; for {first.name}, "
                               f"build/{first.binary}).")(fn)
        what = "; ".join(f"{registry.ENGINES[n].name}: {registry.ENGINES[n].help}" for n in names)
        fn = click.option("--engine", type=click.Choice(names), default=None,
                          help=run_default(f"What answers the queries: {what}.", "engine") if engines is None
                          else f"What answers the queries: {what} (the only engine this command measures).")(fn)
        fn = click.option("--model", type=path, default=None,
                          help="GGUF model (default: the one bootstrap set up).")(fn)
        return click.option("--workload", type=path, default=None,
                            help="JSONL workload (default: the 50 shipped queries, "
                                 "orchestrator/data/workloads/default.jsonl).")(fn)
    return deco(fn) if fn is not None else deco


def format_option(formats=FORMATS, help=FORMAT_HELP):
    return click.option("--format", "fmt", type=click.Choice(formats), default="table", show_default=True,
                        help=help)


def json_alias(fn):
    """The hidden `--json` of a command that had one before `--format`; see chosen()."""
    return click.option("--json", "old_json", is_flag=True, hidden=True)(fn)


def chosen(fmt: str, old_json: bool) -> str:
    if old_json:
        ctx = click.get_current_context(silent=True)
        given = ctx is not None and ctx.get_parameter_source("fmt") not in (click.core.ParameterSource.DEFAULT, None)
        if given and fmt != "json":
            raise click.UsageError(f"--json and --format {fmt} ask for two formats; give --format alone")
        click.echo("warning: --json is now --format json; --json will be removed", err=True)
        return "json"
    return fmt


def run_default(help: str, name: str) -> str:
    """`help` ending with RunConfig's default for the field `name`, as click shows a default: the
    option's own default is None, so that the resolver (runconfig.py) fills it from RunConfig."""
    from orchestrator.runconfig import default

    return f"{help}  [default: {default(name)}]"


def echo_json(doc) -> None:
    click.echo(json.dumps(doc, indent=2, sort_keys=True, default=str))


def echo_rows(fmt: str, columns: list[str], rows: list[dict], *, doc: dict | None = None, table=None) -> None:
    """Print `rows` (dicts with `columns`) as `fmt`: json prints `doc` (the command's one object,
    documented in docs/cli.md), table calls `table()`, which prints the command's own layout."""
    if fmt == "json":
        echo_json(doc if doc is not None else {"rows": rows})
    elif fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows({k: _cell(r.get(k)) for k in columns} for r in rows)
        click.echo(buf.getvalue(), nl=False)
    elif fmt == "md":
        click.echo("| " + " | ".join(columns) + " |")
        click.echo("|" + "---|" * len(columns))
        for r in rows:
            click.echo("| " + " | ".join(str(_cell(r.get(k))).replace("|", "\\|") for k in columns) + " |")
    else:
        table()


def _cell(v):
    if v is None:
        return ""
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v, default=str)
    return v
