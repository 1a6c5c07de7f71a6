"""`edgebench bootstrap`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from orchestrator import paths
from orchestrator.bootstrap.ledger import Ledger
from orchestrator.bootstrap.plan import PROFILES, steps_for
from orchestrator.bootstrap.steps import Context, Options, run_steps
from orchestrator.errors import UserError


def ledger_path(root: Path) -> Path:
    return root / "build" / "ledger.json"


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
@click.option("--force", multiple=True, metavar="STEP", help="Redo STEP (and the steps that depend on it).")
@click.option("--jobs", "-j", type=int, default=None, help="Parallel compile jobs (default: from cores and memory).")
@click.option("--dry-run", is_flag=True, help="Print the plan (steps, done or not, commands) and change nothing.")
@click.option("--json", "as_json", is_flag=True, help="With --dry-run: print the plan as JSON.")
def bootstrap(llama_source, model, model_source, twin, profile, force, jobs, dry_run, as_json):
    """Fetch, patch and build llama.cpp a33e6a0 and get a model; resumable and idempotent."""
    from filelock import FileLock, Timeout

    from orchestrator import platform as plat

    root = paths.project_root()
    info = plat.detect(root)
    options = Options(
        root=root, cache=paths.cache_dir(), llama_source=llama_source, model=model, model_source=model_source,
        profile=profile or info["profile"], jobs=jobs, twin=twin,
    )
    ctx = Context(options=options, ledger=Ledger(ledger_path(root)), platform=info, log=click.echo)
    steps = steps_for(options.profile)
    if dry_run:
        plan = [
            {"step": s.name, "title": s.title, "done": s.is_done(ctx),
             "commands": [c.as_dict() for c in s.commands(ctx)]}
            for s in steps
        ]
        if as_json:
            click.echo(json.dumps({"profile": options.profile, "steps": plan}, indent=2))
        else:
            click.echo(f"bootstrap plan for profile {options.profile} (root {root}):")
            for p in plan:
                click.echo(f"  [{'done' if p['done'] else 'todo'}] {p['step']}: {p['title']}")
                for c in p["commands"]:
                    env = " ".join(f"{k}={v}" for k, v in c["env"].items())
                    where = f"(cd {c['cwd']}) " if c["cwd"] else ""
                    click.echo(f"         {where}{env + ' ' if env else ''}{' '.join(c['argv'])}")
        return
    options.build.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(options.build / ".bootstrap.lock"), timeout=1):
            ran = run_steps(steps, ctx, force=tuple(force))
    except Timeout as exc:
        raise UserError("another bootstrap is running in this checkout", fix="wait for it to finish") from exc
    if ran:
        click.echo(f"bootstrap: done ({', '.join(ran)} ran). Check it with: edgebench doctor")
    else:
        click.echo("bootstrap: nothing to do, every step was already done (--force STEP redoes one)")
