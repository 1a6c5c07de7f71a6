"""`edgebench bootstrap`."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import click

from orchestrator import cliopts
from orchestrator.bootstrap.profiles import ENGINES, PROFILES


@click.command()
@click.option("--llama-source", default="auto", show_default=True, metavar="auto|git|pypi|PATH",
              help="Where llama.cpp a33e6a0 comes from: git (GitHub), pypi (the llama-cpp-python 0.2.52 "
                   "sdist that vendors it), a local folder, or auto (git when GitHub answers, else pypi).")
@click.option("--model", "model", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Use this GGUF instead of downloading TinyLlama.")
@click.option("--model-source", type=click.Choice(["auto", "download", "twin"]), default="auto", show_default=True,
              help="auto: download TinyLlama, or synthesise its timing twin when Hugging Face is unreachable.")
@click.option("--twin", type=click.Choice(["tinyllama", "tiny"]), default="tinyllama", show_default=True,
              help="Shape of the synthetic twin: TinyLlama-1.1B's own, or a 2-layer one for a quick smoke run.")
@click.option("--profile", type=click.Choice(PROFILES), default=None, help="Default: detected from the platform.")
@click.option("--engine", type=click.Choice(ENGINES), default="main", show_default=True,
              help="main: llama.cpp a33e6a0 (what `run --engine main` measures). current: also build today's "
                   "llama.cpp (llama-completion, llama-server, llama-tokenize) from the llama-cpp-python 0.3.36 "
                   "sdist on PyPI, with CMake, for `run --engine completion`.")
@click.option("--redo", multiple=True, metavar="STEP", help="Redo STEP (and the steps that depend on it).")
# the old spelling, for one release: every other --force is a flag, this one took a value
@click.option("--force", "force_old", multiple=True, metavar="STEP", hidden=True)
@click.option("--jobs", "-j", type=int, default=None, help="Parallel compile jobs (default: from cores and memory).")
@click.option("--dry-run", is_flag=True, help="Print the plan (steps, done or not, commands) and change nothing.")
@cliopts.format_option(("table", "json"), "With --dry-run: the plan for people (table), or as one JSON object.")
@cliopts.json_alias
@click.option("--make-swap", is_flag=True, help="Board: add a swap file (sudo) when memory + swap is too small "
              "for the GCC build.")
@click.option("--max-power", is_flag=True, help="Board: switch to the MAXN power mode (sudo nvpmodel) first.")
@click.option("--skip-preflight", is_flag=True, help="Board: skip the checks of disk, memory, sudo, network.")
@click.option("--gcc-from", type=click.Path(path_type=Path, dir_okay=False), default=None, metavar="TARBALL",
              help="Jetson Nano: install GCC 8.5.0 from a tarball written by --pack-gcc instead of building it.")
@click.option("--pack-gcc", is_flag=True, help="Jetson Nano: (build GCC 8.5.0 if needed, then) write it as a "
              "relocatable tarball under build/dist/ for --gcc-from on other boards, and stop.")
def bootstrap(llama_source, model, model_source, twin, profile, engine, redo, force_old, jobs, dry_run, fmt, old_json,
              make_swap, max_power, skip_preflight, gcc_from, pack_gcc):
    """Fetch, patch and build llama.cpp a33e6a0 and get a model; resumable and idempotent.

    On a Jetson it also builds or installs the toolchain (GCC 8.5 on a Nano), jetson-stats and
    the report stack, after a preflight of the board."""
    from orchestrator import paths, sysinfo
    from orchestrator.bootstrap.ledger import Ledger
    from orchestrator.bootstrap.steps import Context, Options

    as_json = cliopts.chosen(fmt, old_json) == "json"
    if as_json and not dry_run:
        raise click.UsageError("--format json prints the plan, which only --dry-run shows: add --dry-run")
    if force_old:
        click.echo(f"warning: `--force STEP` is now `--redo STEP` (`{' '.join('--redo ' + s for s in force_old)}`); "
                   "--force STEP will be removed", err=True)
    root = paths.project_root()
    info = sysinfo.detect(root)
    options = Options(
        root=root, cache=paths.cache_dir(), llama_source=llama_source, model=model, model_source=model_source,
        profile=profile or info["profile"], jobs=jobs, twin=twin, force=tuple(redo) + tuple(force_old),
        gcc_from=gcc_from.resolve() if gcc_from else None, make_swap=make_swap, max_power=max_power,
    )
    ctx = Context(options=options, ledger=Ledger(paths.ledger_path(root)), platform=info, log=click.echo,
                  dry_run=dry_run)
    from orchestrator.bootstrap import profiles

    steps = profiles.select(options.profile, pack_gcc, engine)
    with_preflight = options.profile != "host" and not skip_preflight
    if dry_run:
        show_plan(profiles.describe(ctx, steps, with_preflight), as_json)
        return
    ran, packed = profiles.execute(ctx, steps, with_preflight, pack_gcc)
    if packed is not None:
        from orchestrator.bootstrap.gcc import GCC_VERSION

        click.echo(f"bootstrap: packed GCC {GCC_VERSION} into {packed} (sha256 in {packed.name}.sha256)")
        click.echo(f"  on another board: edgebench bootstrap --gcc-from {packed.name}  "
                   "(or make bootstrap ARGS='--gcc-from PATH')")
    elif ran:
        click.echo(f"bootstrap: done ({', '.join(ran)} ran). Check it with: edgebench doctor")
    else:
        click.echo("bootstrap: nothing to do, every step was already done (--redo STEP redoes one)")


def _arg(a: str) -> str:
    """An argument as a person would type it; "$PATH" in it stays a variable."""
    if "$" in a and '"' not in a and "`" not in a:
        return f'"{a}"'
    return shlex.quote(a)


def _cmdline(c: dict) -> str:
    if c["argv"] and c["argv"][0].startswith("#"):  # a comment in the plan
        return " ".join(c["argv"])
    env = " ".join(f"{k}={_arg(v)}" for k, v in c["env"].items())
    where = f"(cd {c['cwd']}) " if c["cwd"] else ""
    return f"{where}{env + ' ' if env else ''}{' '.join(_arg(a) for a in c['argv'])}"


def show_plan(doc: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({k: v for k, v in doc.items() if k != "root"}, indent=2))
        return
    click.echo(f"bootstrap plan for profile {doc['profile']} (root {doc['root']}):")
    if "preflight" in doc:
        click.echo("  preflight (a dry run changes nothing; a real run stops at any 'refuse'):")
        for c in doc["preflight"]:
            click.echo(f"    {c['level']:6} {c['check']}: {c['detail']}")
            if c["fix"] and c["level"] != "ok":
                click.echo(f"           fix: {c['fix']}")
    for p in doc["steps"]:
        click.echo(f"  [{'done' if p['done'] else 'todo'}] {p['step']}: {p['title']}")
        for c in p["commands"]:
            click.echo(f"         {_cmdline(c)}")
