"""`edgebench doctor`."""

from __future__ import annotations

import sys

import click

from orchestrator import envvars, exitcodes
from orchestrator.cliopts import chosen, echo_json, format_option, json_alias
from orchestrator.doctor import gather


def _current_line(c: dict) -> str:
    if not c["built"]:
        return "llama current not built (edgebench bootstrap --engine current, for run --engine completion)"
    return (f"llama current {c['commit']} ({c['backend']}, from {c['origin']}): "
            f"{c['binaries']['llama-completion']}")


@click.command(epilog="Exit codes: 0 everything a run needs is there; 1 something is missing (listed with its fix).")
@format_option(("table", "json"), "table for people; json: one JSON object, for programs.")
@json_alias
def doctor(fmt, old_json):
    """Report the platform, the llama.cpp build and the model; say how to fix what is missing."""
    d = gather()
    if chosen(fmt, old_json) == "json":
        echo_json(d)
        sys.exit(exitcodes.ERROR if d["problems"] else exitcodes.OK)
    p = d["platform"]
    gib = 1 << 30
    lines = [
        f"platform      {p['system']} {p['machine']}, {p['cpu_model']}, {p['cpu_count']} cores, "
        f"{(p['mem_total_bytes'] or 0) / gib:.1f} GiB RAM, profile {d['profile']}",
        f"jetson        {p['jetson_model'] or 'no'}{'  L4T ' + p['l4t_release'] if p['l4t_release'] else ''}",
        f"cuda          {p['cuda_version'] or 'none'}",
        f"python        {d['python']} ({p['python_executable']})",
        f"free disk     {d['disk_free_bytes'] / gib:.1f} GiB under {d['root']}",
        f"llama.cpp     {d['llama_dir'] or 'missing'}  commit {d['llama_commit'] or '?'}"
        f"  (from {d['llama_source'] or '?'})",
        f"patch         {d['patch_state'] or 'n/a'}",
        f"binary        {d['llama_binary'] or 'missing'}",
        f"build flags   {d['build_flags'] or 'n/a'}",
        _current_line(d["llama_current"]),
        f"model         {d['model_path'] or 'missing'}"
        + (f"  ({'SYNTHETIC timing twin' if d['model_synthetic'] else d['model_source']})" if d["model_path"] else ""),
        f"model sha256  {d['model_sha256'] or 'n/a'}",
    ]
    if d["profile"] != "host":
        lines += [
            f"gcc           {d['gcc'] or 'not built (make bootstrap)'}",
            f"cuda probe    {d['cuda'] or 'not run (make bootstrap)'}",
            f"jetson-stats  {d['jetson_stats'] or 'not installed (make bootstrap)'}",
        ]
        if (d["jetson_stats"] or {}).get("relogin_needed"):
            lines.append("              log out and back in: you were just added to group jtop")
    for i, (name, value, known) in enumerate(envvars.set_now()):
        lines.append(f"{'' if i else 'environment':<14}{name}={value}"
                     + ("" if known else "  (edgebench reads no such variable: misspelt?)"))
    click.echo("\n".join(lines))
    if d["problems"]:
        click.echo("\nto fix:")
        for f in d["problems"]:
            click.echo(f"  - {f}")
        sys.exit(exitcodes.ERROR)
    else:
        click.echo("\nall good: edgebench can run")
