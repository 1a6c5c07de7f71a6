"""The one resolver of a RunConfig: command-line options, a plan's settings and a batch's stored
arguments all become a run's configuration here, and nowhere else. A value left out (None) takes
RunConfig's own default, so each default lives in config.py alone (`--help` reads it from there)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from orchestrator.config import RunConfig

FIELDS = tuple(f.name for f in dataclasses.fields(RunConfig))
# option name -> RunConfig field, where the command line says it differently
OPTION_FIELDS = {"reports_dir": "out_dir"}


def default(name: str):
    """RunConfig's default for the field `name` (threads: this machine's cores)."""
    f = RunConfig.__dataclass_fields__[name]
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def resolve(*, binary: Path | None = None, model: Path | None = None, workload: Path | None = None,
            out_dir: Path | None = None, **settings) -> RunConfig:
    """A RunConfig from what was given; None means the default (the bootstrapped binary and model,
    the shipped workload, reports/, and RunConfig's field defaults)."""
    from orchestrator import paths, runfacts

    unknown = set(settings) - set(FIELDS)
    if unknown:
        raise TypeError(f"not RunConfig fields: {', '.join(sorted(unknown))}")
    given = {k: v for k, v in settings.items() if v is not None}
    if "categories" in given:
        given["categories"] = tuple(given["categories"])
    # absolute paths: the manifest is what a resume reads back, maybe from another directory
    engine = given.get("engine") or default("engine")
    return RunConfig(binary=Path(binary or runfacts.default_binary(engine)).absolute(),
                     model=Path(model or runfacts.default_model()).absolute(),
                     workload=Path(workload or runfacts.default_workload()).absolute(),
                     out_dir=Path(out_dir or paths.reports_dir()).absolute(), **given)


def from_options(params: dict) -> RunConfig:
    """The RunConfig a command's parsed options describe (run, experiment, bench and a batch's
    stored arguments); options that are not run settings (--resume, --warmup...) are ignored."""
    named = {OPTION_FIELDS.get(k, k): v for k, v in params.items()}
    return resolve(**{k: v for k, v in named.items() if k in FIELDS})


def with_plan(base: RunConfig, plan) -> RunConfig:
    """`base` with a plan's settings; an explicit --ignore-eos/--stop-at-eos wins over the plan's
    `ignore_eos` (the record says which was in force)."""
    ignore_eos = base.ignore_eos if base.ignore_eos is not None else plan.ignore_eos
    engine = {}
    if plan.engine and plan.engine != base.engine:
        from orchestrator.engine import registry

        engine = {"engine": plan.engine, "binary": registry.program_beside(base.binary, plan.engine)}
    return dataclasses.replace(base, interval_s=plan.interval_s, seed=plan.seed, categories=(), limit=None,
                               ignore_eos=ignore_eos, **engine)


def recorded(config: dict, out_dir: Path) -> RunConfig:
    """The RunConfig a manifest recorded (config.to_json()), read back for a resume. Every field
    whose recorded value is None has None as its default too, so resolve() changes nothing."""
    c = {k: v for k, v in config.items() if k in FIELDS and k != "out_dir"}
    return resolve(out_dir=Path(out_dir), **c)
