"""A measuring session: everything between parsed options and printed results, for `run`,
`bench`, experiments and cron batches alike.

    with measuring() as lock:                      # one measurement per machine
        s = Session.create(cfg, plan) or Session.resume(run_dir, ...)
        result = s.run(on_record)                   # every pending item, each record on disk before the next

The plan's items come from planning.py, the facts a manifest records (and a resume compares)
from runfacts.py; the engine (engine/base.py) runs each item and returns data, this module
builds the item's record from it (`_record`, the one place a record is assembled) and the store
writes it. Samplers live for the whole session: opened before the first query, closed after the
last, also on the way out of an interruption.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from orchestrator import diskspace, exitcodes, runfacts
from orchestrator import fields as F
from orchestrator.config import RunConfig
from orchestrator.engine import registry as engines
from orchestrator.engine.base import Engine
from orchestrator.errors import UserError
from orchestrator.planning import Item, items_from_manifest, largest_disk_bytes, plan_items, select_queries, variant_id
from orchestrator.store import MANIFEST_ENGINE, RAW

# Platform keys a resume must find unchanged: timings from another machine or CPU are not
# the same experiment (pyperf refuses to merge such runs).
CHECKED_PLATFORM_KEYS = ("machine", "cpu_model", "l4t_release", "jetson_model")


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class Prepared:
    queries: list
    pieces: list[bytes]
    model_info: dict
    n_ctx_train: int | None
    ignore_eos: bool
    tokenizer: Path


@dataclass
class Result:
    run_dir: Path
    records: list[dict]  # every record of the run folder, earlier sessions' included

    @property
    def n_failed(self) -> int:
        return sum(1 for r in self.records if r["status"] != "ok")

    @property
    def exit_code(self) -> int:
        return exitcodes.FAILED_QUERIES if self.n_failed else exitcodes.OK


def prepare(cfg: RunConfig) -> Prepared:
    """Every check that can fail before a query runs: binary, model, workload."""
    from orchestrator.engine.vocab import token_pieces
    from orchestrator.ggufile import read_header, read_info
    from orchestrator.workloads.schema import CATEGORIES, load_workload

    if not cfg.binary.is_file():
        raise UserError(f"llama.cpp binary {cfg.binary} does not exist",
                        fix=f"{engines.entry(cfg.engine).bootstrap}, or --binary PATH")
    if not os.access(cfg.binary, os.X_OK):
        raise UserError(f"llama.cpp binary {cfg.binary} is not executable", fix=f"chmod +x {cfg.binary}")
    info = read_info(cfg.model)
    if cfg.memory_check:
        check_fits(info)
    meta, _ = read_header(cfg.model, tensors=False)
    try:
        pieces = token_pieces(meta)
    except ValueError as exc:
        raise UserError(f"{cfg.model}: {exc}", fix="--model PATH to a llama-architecture GGUF") from exc
    for c in cfg.categories:
        if c not in CATEGORIES:
            raise UserError(f"unknown category {c!r}", fix=f"--category one of: {', '.join(CATEGORIES)}")
    queries = select_queries(load_workload(cfg.workload), cfg.categories, cfg.limit)
    if not queries:
        raise UserError(f"no query of {cfg.workload} matches the selection", fix="drop --category or --limit")
    ignore_eos = info["synthetic"] if cfg.ignore_eos is None else cfg.ignore_eos
    tokenizer = cfg.binary.parent / engines.entry(cfg.engine).tokenize
    if any(not q.prompt_tokens_est for q in queries) and not tokenizer.is_file():
        raise UserError(
            f"{cfg.workload} has queries without prompt_tokens_est, and there is no {tokenizer} to count them",
            fix="make bootstrap (builds tokenize beside main), or edgebench workloads build (stores the counts)",
        )
    return Prepared(queries, pieces, info, info.get("context_length"), ignore_eos, tokenizer)


def check_fits(info: dict) -> None:
    """A model larger than the memory available pages from disk at every token: its timings
    would measure the SD card, not the model. Refuse before the first query."""
    from orchestrator.sysinfo import meminfo, sysroot

    avail = meminfo(sysroot()).get("MemAvailable")
    if avail and info["size_bytes"] > avail:
        raise UserError(
            f"the model {Path(info['path']).name} ({info['size_bytes'] / 1e6:.0f} MB) does not fit in the "
            f"{avail / 1e6:.0f} MB of memory available here",
            fix="--model a smaller quantisation (e.g. Q4_K_M), free memory, or --no-memory-check to run it anyway",
        )


def config_from_manifest(manifest: dict, out_dir: Path) -> RunConfig:
    from orchestrator import runconfig

    return runconfig.recorded(manifest["config"], out_dir)


def default_samplers(cfg: RunConfig) -> list:
    from orchestrator.sampling.autodetect import make_gpu_sampler
    from orchestrator.sampling.process import ProcessSampler

    return [ProcessSampler(cfg.interval_s), make_gpu_sampler(cfg.gpu_sampler, cfg.interval_s)]


class Session:
    """One run folder being measured. Build it with `create` or `resume`, then `run()`."""

    def __init__(self, cfg: RunConfig, prep: Prepared, store, items: list[Item], samplers: list,
                 executor=None, log=print, before_item=None, engine: Engine | None = None):
        self.cfg, self.prep, self.store, self.items = cfg, prep, store, items
        self.samplers = samplers
        # the configuration's engine unless another is given; `executor` has engine/child.run_child's
        # signature (tests hand in a fake `main`)
        self.engine = engine or engines.create(cfg, prep, executor)
        self.log = log
        # `before_item(item) -> dict | None` runs before each item (an experiment's thermal gate
        # waits there, its samplers learn the phase); what it returns is merged into the record.
        self.before_item = before_item
        self._open = False
        # the board's idle power of this run folder (sampling/idle.py), measured once before its first query
        self.idle_mw = (store.manifest.get("idle_power") or {}).get("power_mw")
        self._uncommitted: list[Path] = []  # the attempt's scratch, then raw folder, until its record is written
        self._largest: int | None = None

    # -- building -------------------------------------------------------------------------
    @classmethod
    def create(cls, cfg: RunConfig, *, warmup: int = 0, repeat: int = 1, variants: list[dict] | None = None,
               items_for=None, run_dir: Path | None = None, samplers=None, executor=None, extra_manifest=None,
               log=print, before_item=None, engine: Engine | None = None) -> Session:
        """A new run folder. `items_for(queries)` replaces the warm-up/repeat/variant plan
        (experiments choose their own items); `extra_manifest` is recorded as is."""
        from orchestrator.net import sha256_file
        from orchestrator.store import OUT_ELSEWHERE, RunStore, check_writable, new_run_id

        check_writable(Path(run_dir) if run_dir else cfg.out_dir, OUT_ELSEWHERE)  # before minutes of hashing
        prep = prepare(cfg)
        items = items_for(prep.queries) if items_for else plan_items(prep.queries, warmup, repeat, variants)
        run_dir = Path(run_dir) if run_dir else cfg.out_dir / new_run_id()
        smp = samplers if samplers is not None else default_samplers(cfg)
        engine = engine or engines.create(cfg, prep, executor)
        manifest = {
            "run_id": run_dir.name,
            "created_at": now(),
            "edgebench_version": _version(),
            "config": cfg.to_json(),
            "plan": {"warmup": warmup, "repeat": repeat, "variants": variants or [],
                     "items": [i.to_json() for i in items]},
            "platform": runfacts.platform(cfg.out_dir),
            "board": {"start": runfacts.board_state()},
            "binary": runfacts.binary_facts(cfg.binary),
            "model": runfacts.model_facts(cfg.model, prep.model_info),
            "workload": {"path": str(cfg.workload), "sha256": sha256_file(cfg.workload),
                         "queries": [q.id for q in prep.queries]},
            "ignore_eos": prep.ignore_eos,
            "samplers": [s.info() for s in smp],
            MANIFEST_ENGINE: engine.info(),
            "harness": {"pid": os.getpid(), "python": sys.version.split()[0]},
            "status": "running",
            **(extra_manifest or {}),
        }
        try:
            store = RunStore.create(run_dir, manifest)
        except OSError as exc:
            if not diskspace.is_enospc(exc):
                raise
            _remove_unstarted(run_dir)  # nothing was recorded; a half-made folder would be resumed
            raise diskspace.disk_full(None, len(items), cfg.out_dir, "run the command again",
                                      largest_disk_bytes(items)) from None
        return cls(cfg, prep, store, items, smp, executor, log, before_item, engine)

    @classmethod
    def resume(cls, run_dir: Path, *, force: bool = False, samplers=None, executor=None, log=print,
               before_item=None, engine: Engine | None = None) -> Session:
        """Reopen a run folder; refuse (unless `force`) when the binary, model, workload or
        machine differ from what the manifest recorded."""
        from orchestrator.store import RunStore

        store = RunStore.open(run_dir)
        cfg = config_from_manifest(store.manifest, store.dir.parent)
        prep = prepare(cfg)
        current = {"binary": runfacts.binary_facts(cfg.binary),
                   "model": runfacts.model_facts(cfg.model, prep.model_info),
                   "platform": runfacts.platform(cfg.out_dir)}
        diffs = resume_differences(store.manifest, current, cfg)
        if diffs and not force:
            field_, old, new = diffs[0]
            more = f" (and {len(diffs) - 1} more)" if len(diffs) > 1 else ""
            raise UserError(f"cannot resume {store.dir}: {field_} was {old} when the run started, now {new}{more}; "
                            "its timings would not be comparable",
                            fix=f"start a new run, or --resume {store.dir} --force to mix them anyway (recorded)")
        if diffs:
            forced = list(store.manifest.get("forced_resumes", []))
            forced.append({"at": now(), "differences": [{"field": f, "old": o, "new": n} for f, o, n in diffs]})
            store.update_manifest(forced_resumes=forced)
            for f, o, n in diffs:
                log(f"warning: resuming despite a changed {f} ({o} -> {n}), as --force asked; recorded")
        items = items_from_manifest(store.manifest["plan"]["items"], prep.queries, store.dir, cfg.workload)
        smp = samplers if samplers is not None else default_samplers(cfg)
        return cls(cfg, prep, store, items, smp, executor, log, before_item, engine)

    @property
    def again(self) -> str:
        """How to go on with this run after it stopped: its batch, or a resume of this folder."""
        m = self.store.manifest
        if isinstance(m.get("batch"), dict):
            return f"run the batch again: edgebench batch --name {m['batch'].get('name')} resumes where it stopped"
        kind = "experiment" if "experiment" in m else "run"
        return f"edgebench {kind} --resume {self.store.dir} finishes the run"

    def check_room(self, pending: list[Item]) -> None:
        """DiskFull before a query the disk has no room for (its raw files, record and samples,
        with a margin), never halfway through it."""
        diskspace.check_room(self.store.dir, len(pending), self.again, self._largest_query_bytes())

    def disk_full(self, pending: list[Item]) -> diskspace.DiskFull:
        return diskspace.disk_full(self.store.dir, len(pending), self.store.dir.parent, self.again,
                                   self._largest_query_bytes())

    def _largest_query_bytes(self) -> int:
        """The token-based budget of the plan's largest query: what the first one may take."""
        if self._largest is None:
            self._largest = largest_disk_bytes(self.items)
        return self._largest

    def warnings(self) -> list[str]:
        """What makes this run's timings unrepresentative, each naming its fix."""
        from orchestrator.board import board_warnings

        return board_warnings(self.store.manifest.get("board", {}).get("start") or {})

    # -- running --------------------------------------------------------------------------
    def pending(self) -> list[Item]:
        from orchestrator.store import record_key

        done = {record_key(r) for r in self.store.read_queries()}
        return [i for i in self.items if i.key not in done]

    def open(self) -> None:
        if not self._open:
            for s in self.samplers:
                s.open()
            self._open = True
            self.engine.run_dir = self.store.dir  # where an engine keeps what lives for the run (a server's log)
            facts = self.engine.open(self.cfg, self.log)
            if facts:
                known = self.store.manifest.get(MANIFEST_ENGINE, {})
                self.store.update_manifest(**{MANIFEST_ENGINE: {**known, **facts}})

    def close(self) -> None:
        if self._open:
            try:
                self.engine.close()
            except Exception as exc:  # noqa: BLE001 - the samplers must close too, and the run's outcome stand
                self.log(f"warning: engine {self.engine.name} did not close cleanly: {exc}")
            for s in self.samplers:
                try:
                    s.close()
                except Exception as exc:  # noqa: BLE001 - one sampler's failure must not hide the others' close
                    self.log(f"warning: sampler {s.name} did not close cleanly: {exc}")
            self._open = False

    def prompt_tokens(self, query) -> int:
        if query.prompt_tokens_est:
            return query.prompt_tokens_est
        from orchestrator.workloads.tokencount import count_tokens

        return count_tokens(query.prompt, self.prep.tokenizer, self.cfg.model)

    def bare_s(self, item: Item, workdir: Path) -> float:
        """Seconds the engine takes for `item` run bare in `workdir` (bench's baseline of the harness)."""
        cfg, q = item.applied(self.cfg)
        self.open()
        return self.engine.bare(self.engine.invocation(cfg, q, self.prompt_tokens(q), workdir))

    def run_one(self, item: Item) -> dict:
        """Measure one item and commit it: its raw folder, its samples, its record last."""
        from orchestrator.engine.base import Outcome

        self.open()
        gate = self.before_item(item) if self.before_item else None
        cfg, q = item.applied(self.cfg)
        attempt = uuid.uuid4().hex[:12]
        scratch = self.store.scratch(q.id, item.leaf)
        self._uncommitted = [scratch]  # dropped by a full disk until the record is on disk
        for s in self.samplers:
            if hasattr(s, "set_interval"):
                s.set_interval(cfg.interval_s)
        try:
            n_prompt = self.prompt_tokens(q)
        except (UserError, ValueError) as exc:
            outcome = Outcome.failed("error", f"cannot count prompt tokens: {exc}")
        else:
            outcome = self.engine.measure(self.engine.invocation(cfg, q, n_prompt, scratch), cfg, self.samplers)
        raw = self.store.keep_raw(scratch, q.id, item.leaf, outcome.files, outcome.blobs)
        self._uncommitted = [raw]
        record = self._record(item, q, attempt, outcome, gate, raw)
        flat = [{**s, F.R_SAMPLER: name} for name, series in outcome.samples.items() for s in series]
        record[F.N_SAMPLES] = len(flat)
        self.store.append_samples(q.id, attempt, flat)
        self.store.append_query(record)
        self._uncommitted = []
        return record

    def _record(self, item: Item, query, attempt: str, outcome, gate: dict | None, raw: Path) -> dict:
        """The one place a query record is assembled: who it is, what the engine measured, what
        the samplers saw while it ran, where its raw files are, and which item of the plan it is."""
        record = {F.QUERY_ID: query.id, F.CATEGORY: query.category, F.ENGINE_NAME: self.engine.name,
                  F.ATTEMPT: attempt, F.MAX_TOKENS: query.max_tokens, **outcome.fields}
        if outcome.timeline is not None:
            record[F.SAMPLERS] = [smp.name for smp in self.samplers]
            timeline = {**outcome.timeline, F.IDLE_POWER_MW: self.idle_mw}
            for smp in self.samplers:
                record.update(smp.aggregate(outcome.samples.get(smp.name, []), timeline))
        record.update({F.RAW_DIR: str(raw.relative_to(self.store.dir / RAW)), F.PHASE: item.phase,
                       F.REPETITION: item.repetition, F.VARIANT: item.variant, F.VARIANT_ID: variant_id(item.variant),
                       **(gate or {})})
        return record

    def run(self, on_record=None) -> Result:
        """Every pending item in plan order; `on_record(record, index, total)` after each.
        The manifest ends `finished`, or `interrupted` with the reason when something stops it.
        A full disk (the check before a query, or ENOSPC from a write of ours or the child's)
        raises DiskFull: exit 1, the bytes needed, every record intact."""
        with self.store.lock():
            todo = self.pending()
            status, reason = "interrupted", None
            try:
                self.open()
                if todo:
                    self.check_room(todo)  # before the idle window: a full disk stops the run at once
                    self.measure_idle()
                for i, item in enumerate(todo, 1):
                    self.check_room(todo[i - 1:])
                    record = self.run_one(item)
                    if on_record:
                        on_record(record, i, len(todo))
                status = "finished"
            except OSError as exc:
                if not diskspace.is_enospc(exc):
                    reason = _reason(exc)
                    raise
                self._drop_uncommitted()
                full = self.disk_full(self.pending())
                reason = f"{_reason(full)} ({exc.strerror or exc})"
                raise full from None
            except BaseException as exc:
                reason = _reason(exc)
                raise
            finally:
                self.close()
                self._finish_even_if_full(status, reason)
        return Result(self.store.dir, self.store.read_queries())

    def measure_idle(self) -> None:
        """The board's idle power, once per run folder, before its first query (a resume keeps the
        first session's): nothing of ours runs while the GPU/board sampler watches."""
        if "idle_power" in self.store.manifest:
            return
        from orchestrator.sampling.idle import measure

        idle = measure(self.samplers, self.cfg.idle_window_s)
        if idle is None:
            return
        self.store.update_manifest(idle_power=idle)
        self.idle_mw = idle["power_mw"]
        self.log(f"idle power: {idle['power_mw']:.0f} mW over {idle['window_s']:g} s ({idle['n']} readings)"
                 if idle["n"] else f"idle power not measured: {idle['why']}; energy is given gross only")

    def _drop_uncommitted(self) -> None:
        """The raw files of the attempt the disk cut short: it has no record, so they are not
        data (a resume measures it again), and deleting them makes room for the final manifest."""
        for path in self._uncommitted:
            self.store.drop_attempt(path)
        self._uncommitted = []

    def _finish_even_if_full(self, status: str, reason: str | None) -> None:
        try:
            self._finish(status, reason)
        except OSError as exc:
            if not diskspace.is_enospc(exc):
                raise
            # The manifest keeps saying `running` for a process that is gone: `runs list` shows
            # it as killed, and a resume or the next batch finishes it like a killed run.
            self.log(f"warning: the disk is full, so the run's final state could not be written ({exc.strerror}); "
                     "it reads as killed, and every record is intact")

    def _finish(self, status: str, reason: str | None) -> None:
        records = self.store.read_queries()
        harness = dict(self.store.manifest.get("harness", {}), **runfacts.harness_usage())
        board = dict(self.store.manifest.get("board", {}))
        try:
            board["finish"] = runfacts.board_state()
        except Exception as exc:  # noqa: BLE001 - the records are safe; a board read must not mask the real error
            board["finish"] = {"error": str(exc)}
        fields = dict(status=status, finished_at=now(), n_queries=len(records),
                      n_failed=sum(1 for r in records if r[F.STATUS] != "ok"),
                      results=dict(self.store.manifest.get("results") or {}, **run_results(records)),
                      samplers=[s.info() for s in self.samplers], harness=harness, board=board)
        if reason:
            fields["interrupted_by"] = reason
        self.store.update_manifest(**fields)


def run_results(records: list[dict]) -> dict:
    """The per-category statistics every run's manifest records: the same engine (stats.py) and
    the same numbers as the terminal summary, summary.json and the report."""
    from orchestrator import stats
    from orchestrator.workloads.schema import CATEGORIES

    return {"by_category": stats.by_category(records, CATEGORIES)}


def resume_differences(manifest: dict, current: dict, cfg: RunConfig) -> list[tuple[str, object, object]]:
    """(field, old, new) for every checked fact that changed since the run started."""
    from orchestrator.net import sha256_file

    out = []
    checks = [("binary SHA-256", manifest["binary"].get("sha256"), current["binary"]["sha256"]),
              ("model SHA-256", manifest["model"].get("sha256"), current["model"]["sha256"]),
              ("workload SHA-256", manifest["workload"].get("sha256"), sha256_file(cfg.workload))]
    for key in CHECKED_PLATFORM_KEYS:
        checks.append((f"platform {key}", manifest["platform"].get(key), current["platform"].get(key)))
    old_mode = (manifest.get("board", {}).get("start") or {}).get("nvpmodel")
    if old_mode not in (None, "unavailable"):
        checks.append(("power mode (nvpmodel)", old_mode, (runfacts.board_state() or {}).get("nvpmodel")))
    for name, old, new in checks:
        if old != new:
            out.append((name, old, new))
    return out


def _remove_unstarted(run_dir: Path) -> None:
    import shutil

    if run_dir.is_dir() and not run_dir.is_symlink():
        shutil.rmtree(run_dir, ignore_errors=True)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        code = exc.code if isinstance(exc.code, int) else exitcodes.ERROR
        signum = exitcodes.signal_of(code)
        if signum is not None:
            import signal

            try:
                return f"signal {signal.Signals(signum).name}"
            except ValueError:
                pass
        return f"exit {code}"
    if isinstance(exc, KeyboardInterrupt):
        return "signal SIGINT"
    return f"{type(exc).__name__}: {exc}"


def _version() -> str:
    from orchestrator import __version__

    return __version__
