"""A replayed board for the report's tests and the render benchmark; never a measurement.

Run and experiment folders are written by the real measuring code: `orchestrator.session.Session`
(and `experiments.runner` for `experiment all`) with `ReplayMain` at the executor seam (it has
`run_child`'s signature) and a Jetson Nano's files at the OS boundary (`EDGEBENCH_SYSROOT`, an
`nvpmodel` and an `nvcc` on PATH, while a folder is being written). `ReplayMain` answers as llama.cpp
`main` does (the prompt echo, one chunk per token, the `-ld` YAML, the KV line on stderr) on a
synthetic timeline: model load, prefill per prompt token, a gap per generated token. No time passes.

The readings of each query come from the sampler classes' own code, fed the board's state at each
reading's time: `sampling.jtop.reading` on a client object with jetson-stats 4.3.2's shapes,
`sampling.tegrastats_format.parse_line` on Nano (L4T 32, root) lines, and the process sampler's
fields (psutil reads a live process, so those are built here with its names). The real classes'
`aggregate()` then makes the record's figures in the session's `_record`, as on a board.

Every manifest (and experiment.json) says `generated: true`. A seed gives the same figures; the
attempt ids and dates are the session's own.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from orchestrator import fields as F
from orchestrator.config import RunConfig
from orchestrator.engine.child import ChildResult
from orchestrator.sampling.base import Sampler
from orchestrator.workloads.schema import CATEGORIES

PID = 4242  # the replayed child's pid, as jtop's process rows name it
N_WORDS = 400
FIRST_WORD = 3  # ids 0..2 are <unk>, <s>, </s>
NASTY = '<script>alert("x")</script> & "quotes"'
NASTY_ID = FIRST_WORD + N_WORDS  # one vocabulary entry is hostile text, so outputs can carry it
# TinyLlama-1.1B's figures (what the KV cache and the report's model line are computed from).
TINYLLAMA = {"block_count": 22, "embedding_length": 2048, "feed_forward_length": 5632, "head_count": 32,
             "head_count_kv": 4, "context_length": 2048}
# Per category: (median prompt tokens, max_tokens), as workloads/default.jsonl.
SHAPE = {"simple": (10, 30), "complex": (35, 70), "conversational": (16, 40), "task-oriented": (75, 100),
         "contextual": (265, 50)}
NANO_MODEL = "NVIDIA Jetson Nano Developer Kit"
NANO_CORES = 4
NANO_MEM_KB = 4059712
GPU_MAX_MHZ = 921.6
JETSON_STATS = "4.3.2"
GPU_SOURCES = ("jtop", "tegrastats", "none")
KV_LINE = "llama_new_context_with_model: KV self size  = {:.2f} MiB\n"


# -- the board: what a Nano's counters read at a time of a query ----------------------------------
@dataclass
class Timeline:
    """One query on the replayed clock (seconds since the spawn), and the board's levels for it."""

    t_echo: float
    t_tok: list[float]
    t_exit: float
    rss_peak: float
    gpu_mem_kb: int
    rng_seed: int
    idle: bool = False  # no child: the board before the first query (the session's idle-power window)

    def phase(self, t: float) -> str:
        if self.idle:
            return "idle"
        if t < self.t_echo:
            return "load"
        if t < self.t_tok[0]:
            return "prefill"
        return "decode" if t <= self.t_tok[-1] else "exit"


# Levels per phase: CPU % summed over the Nano's 4 cores, GPU load %.
_CPU = {"idle": (2, 8), "load": (60, 90), "prefill": (370, 398), "decode": (150, 230), "exit": (10, 20)}
_GPU = {"idle": (0, 0), "load": (0, 0), "prefill": (93, 99), "decode": (55, 75), "exit": (0, 2)}


def state(tl: Timeline, t: float, rng: random.Random) -> dict:
    """The board at time `t` of the query: loads, memory, power, temperatures, clocks."""
    phase = tl.phase(t)
    frac = 0.0 if phase == "idle" else min(1.0, t / tl.t_echo) if phase == "load" else 1.0
    done = sum(1 for x in tl.t_tok if x <= t)
    gpu_load = rng.uniform(*_GPU[phase])
    cpu = rng.uniform(*_CPU[phase])
    gpu_kb = 0 if phase in ("idle", "load") else tl.gpu_mem_kb + 4 * done  # the KV cache grows a little per token
    return {
        "phase": phase, "rss": int(30e6 + (tl.rss_peak - 30e6) * frac + 2048 * done), "cpu": cpu,
        "gpu_load": gpu_load, "gpu_khz": 76800 if gpu_load == 0 else int(GPU_MAX_MHZ * 1000),
        "gpu_mem_kb": gpu_kb, "shared_kb": 40000 + gpu_kb, "ram_used_kb": 600000 + int(tl.rss_peak / 1024),
        "power_in": int(1300 + 35 * gpu_load + 6 * cpu), "power_gpu": int(30 * gpu_load),
        "power_cpu": int(200 + 4 * cpu), "temp_gpu": round(38 + 0.4 * t + gpu_load / 50, 1),
        "temp_cpu": round(37 + 0.3 * t + cpu / 200, 1),
    }


def grid(t_exit: float, interval: float, phase: float) -> list[float]:
    """Reading times inside [0, t_exit]: a polling grid starting `phase` seconds after the spawn."""
    out, k = [], 0
    while phase + k * interval <= t_exit:
        out.append(round(phase + k * interval, 6))
        k += 1
    return out


# -- what each sampler's code reads at the boundary ----------------------------------------------
def process_readings(tl: Timeline, interval: float) -> list[dict]:
    """The process sampler's fields (sampling/process.py): the first reading's CPU is 0, its dt None."""
    rng = random.Random(tl.rng_seed)
    out = []
    for k, t in enumerate(grid(tl.t_exit, interval, 0.002)):
        s = state(tl, t, rng)
        cpu = 0.0 if k == 0 else round(s["cpu"], 1)
        out.append({F.T_S: t, F.DT_S: None if k == 0 else interval, F.RSS_BYTES: s["rss"], F.CPU_PCT: cpu,
                    F.CPU_PCT_NORM: round(cpu / NANO_CORES, 2), F.NUM_THREADS: NANO_CORES + 2,
                    F.SYS_CPU_PCT: 0.0 if k == 0 else round(cpu / NANO_CORES + 3, 1),
                    F.SYS_MEM_USED_BYTES: 600_000_000 + s["rss"],
                    F.SYS_MEM_AVAILABLE_BYTES: NANO_MEM_KB * 1024 - 600_000_000 - s["rss"]})
    return out


def jtop_client(s: dict) -> SimpleNamespace:
    """A connected jetson-stats 4.3.2 client's attributes at one update (units: %, kHz, kB, mW, C;
    process rows [pid, user, gpu, type, prio, state, cpu%, rss pages, gpu_mem kB, name])."""
    rail = {"online": True, "type": "INA3221", "status": "ok", "volt": 5000, "warn": 0, "crit": 0}
    rails = {name: {**rail, "curr": mw // 5, "power": mw, "avg": mw}
             for name, mw in (("POM_5V_GPU", s["power_gpu"]), ("POM_5V_CPU", s["power_cpu"]))}
    page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
    return SimpleNamespace(
        gpu={"gpu": {"type": "integrated", "status": {"railgate": False, "3d_scaling": True, "load": s["gpu_load"]},
                     "freq": {"governor": "nvhost_podgov", "cur": s["gpu_khz"], "max": int(GPU_MAX_MHZ * 1000),
                              "min": 76800}}},
        processes=[[PID, "nano", "I", "Graphic", 20, "R", s["cpu"], s["rss"] // page, s["gpu_mem_kb"], "main"]],
        memory={"RAM": {"tot": NANO_MEM_KB, "used": s["ram_used_kb"], "shared": s["shared_kb"], "lfb": 400},
                "SWAP": {"tot": 2029852, "used": 0, "cached": 0},
                "EMC": {"online": True, "val": 12 + int(s["gpu_load"] / 4), "cur": 1600000, "max": 1600000}},
        power={"rail": rails, "tot": {**rail, "name": "POM_5V_IN", "power": s["power_in"], "avg": s["power_in"]}},
        temperature={"GPU": {"online": True, "temp": s["temp_gpu"]}, "CPU": {"online": True, "temp": s["temp_cpu"]},
                     "PMIC": {"online": True, "temp": 100.0}},
        cpu={"cpu": [{"online": True, "freq": {"cur": 1479000, "min": 102000, "max": 1479000}}
                     for _ in range(NANO_CORES)]},
    )


def tegrastats_line(s: dict) -> str:
    """One line of a Nano's tegrastats run as root (L4T 32): the format of orchestrator/data/recorded/tegrastats."""
    core = min(100, int(s["cpu"] / NANO_CORES))
    gpu = f"{int(s['gpu_load'])}%@{s['gpu_khz'] // 1000}"
    return (f"RAM {s['ram_used_kb'] // 1024}/3964MB (lfb 402x4MB) SWAP 0/1982MB (cached 0MB) IRAM 0/252kB(lfb 252kB) "
            f"CPU [{','.join([f'{core}%@1479'] * NANO_CORES)}] EMC_FREQ {12 + int(s['gpu_load'] / 4)}%@1600 "
            f"GR3D_FREQ {gpu} APE 25 PLL@{s['temp_cpu']}C CPU@{s['temp_cpu']}C PMIC@100C GPU@{s['temp_gpu']}C "
            f"AO@45C thermal@{s['temp_gpu']}C POM_5V_IN {s['power_in']}/{s['power_in']} "
            f"POM_5V_GPU {s['power_gpu']}/{s['power_gpu']} POM_5V_CPU {s['power_cpu']}/{s['power_cpu']}")


def jtop_readings(tl: Timeline, interval: float) -> list[dict]:
    from orchestrator.sampling.jtop import reading, rss_unit_bytes

    rng = random.Random(tl.rng_seed + 1)
    unit = rss_unit_bytes(JETSON_STATS)
    return [{F.T_S: t, **reading(jtop_client(state(tl, t, rng)), PID, unit)}
            for t in grid(tl.t_exit, interval, rng.uniform(0, interval))]


def tegrastats_readings(tl: Timeline, interval: float) -> list[dict]:
    from orchestrator.sampling.tegrastats_format import parse_line

    rng = random.Random(tl.rng_seed + 2)
    # the sampler adds the GPU's maximum clock, read once from sysfs (tegrastats prints only the current one)
    return [{F.T_S: t, **parse_line(tegrastats_line(state(tl, t, rng))), F.GPU_FREQ_MAX_MHZ: GPU_MAX_MHZ}
            for t in grid(tl.t_exit, interval, rng.uniform(0, interval))]


class Replayed(Sampler):
    """A real sampler object (its aggregate() and info() are the run's) whose source is the replayed
    board: stop() returns what its reading code reads over the query ReplayMain just played, or over
    the idle board for as long as it was watched when no query is playing (the session's idle-power
    window, sampling/idle.py). Its interval follows the session's (set_interval), as a fresh sampler
    per plan would."""

    def __init__(self, real, read, board: Board):
        self.real, self._read, self.board = real, read, board
        self.name, self.kind, self.interval_s = real.name, real.kind, real.interval_s
        self._started_ns: int | None = None

    def set_interval(self, interval_s: float) -> None:
        self.interval_s = interval_s

    def start(self, pid: int, t0_ns: int) -> None:
        self._started_ns = t0_ns

    def stop(self) -> list[dict]:
        import time

        tl = self.board.current
        if tl is None and self._started_ns is not None:
            watched = (time.perf_counter_ns() - self._started_ns) / 1e9
            tl = Timeline(0.0, [0.0], watched, rss_peak=0.0, gpu_mem_kb=0, rng_seed=int(watched * 1e6), idle=True)
        self._started_ns = None
        return self._read(tl, self.interval_s) if tl else []

    def aggregate(self, samples: list[dict], timeline: dict) -> dict:
        return self.real.aggregate(samples, timeline)

    def info(self) -> dict:
        return {**self.real.info(), "interval_s": self.interval_s, "replayed": True}


class Board:
    """The query being replayed, shared by ReplayMain (which plays it) and the Replayed samplers."""

    current: Timeline | None = None


def samplers(board: Board, gpu: str, interval_s: float) -> list[Sampler]:
    """The process sampler and the GPU sampler `gpu` (one of GPU_SOURCES) on the replayed board."""
    from orchestrator.sampling.autodetect import NoGpuSampler
    from orchestrator.sampling.process import ProcessSampler

    out: list[Sampler] = [Replayed(ProcessSampler(interval_s, cores=NANO_CORES), process_readings, board)]
    if gpu == "jtop":
        from orchestrator.sampling.jtop import JtopSampler

        real = JtopSampler(interval_s)
        real.version, real.service_interval_s = JETSON_STATS, interval_s
        out.append(Replayed(real, jtop_readings, board))
    elif gpu == "tegrastats":
        from orchestrator.sampling.tegrastats import TegrastatsSampler

        out.append(Replayed(TegrastatsSampler(interval_s, binary="tegrastats"), tegrastats_readings, board))
    elif gpu == "none":
        out.append(NoGpuSampler("the replayed board has no GPU telemetry", {"none": "replay"}))
    else:
        raise ValueError(f"gpu must be one of {GPU_SOURCES}, got {gpu!r}")
    return out


# -- the executor -------------------------------------------------------------------------------
def _arg(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


class ReplayMain:
    """Has run_child's signature. Timings per query: load 0.7-0.9 s, prefill 4 ms per prompt token,
    45 ms per generated token rising 0.02 ms per position (the KV cache grows), with jitter."""

    def __init__(self, board: Board, seed: int = 0):
        import time

        self.board, self.rng = board, random.Random(seed)
        self.clock_ns = time.perf_counter_ns()

    def timeline(self, n_prompt: int, n_out: int) -> Timeline:
        rng = self.rng
        t_echo = rng.uniform(0.7, 0.9)
        t, toks = t_echo + 0.004 * n_prompt + rng.uniform(0.01, 0.03), []
        for k in range(n_out):
            toks.append(t)
            t += 0.045 + 0.00002 * k + rng.uniform(0, 0.004)
        return Timeline(t_echo, toks, toks[-1] + 0.05, rss_peak=7.0e8 + n_prompt * 2e4 + rng.uniform(0, 5e6),
                        gpu_mem_kb=380000 + 40 * n_prompt, rng_seed=rng.randrange(1 << 30))

    def __call__(self, argv, cwd, stderr_path, samplers, idle_timeout_s, timeout_s) -> ChildResult:
        prompt, n = _arg(argv, "-p"), int(_arg(argv, "-n"))
        prompt_ids = [1] + [FIRST_WORD + len(w) % N_WORDS for w in prompt.split()]
        out_ids = [FIRST_WORD + (i * 7 + len(prompt)) % N_WORDS for i in range(n)]
        if NASTY in prompt:
            out_ids[0] = NASTY_ID
        tl = self.timeline(len(prompt_ids), n)
        t0 = self.clock_ns
        self.clock_ns += int((tl.t_exit + 0.5) * 1e9)
        res = ChildResult(t_spawn_ns=t0, exit_code=0, t_exit_ns=t0 + int(tl.t_exit * 1e9))
        for s in samplers:
            s.start(PID, t0)
        self.board.current = tl
        try:
            for s in samplers:
                res.samples[s.name] = s.stop()
        finally:
            self.board.current = None
        pieces = [f" w{i - FIRST_WORD}" if i != NASTY_ID else NASTY for i in out_ids]
        res.chunks.append((t0 + int(tl.t_echo * 1e9), (" " + prompt).encode()))
        res.chunks += [(t0 + int(t * 1e9), p.encode()) for t, p in zip(tl.t_tok, pieces, strict=True)]
        res.peak_rss_bytes = int(tl.rss_peak + 2048 * n)
        res.cpu_s = round(tl.t_exit * 1.8, 3)
        ctx = int(_arg(argv, "-c"))
        m = TINYLLAMA
        kv = 2 * ctx * m["head_count_kv"] * (m["embedding_length"] // m["head_count"]) * m["block_count"] * 2
        Path(stderr_path).write_text(KV_LINE.format(kv / 2**20))
        ld = Path(_arg(argv, "-ld"))
        ld.mkdir(parents=True, exist_ok=True)
        gaps = [b - a for a, b in zip(tl.t_tok, tl.t_tok[1:], strict=False)]
        (ld / "main-replay.yml").write_text(
            f"prompt_tokens: {prompt_ids}\noutput_tokens: {out_ids}\nn_p_eval: {len(prompt_ids)}\n"
            f"n_eval: {n - 1}\nn_sample: {n}\nt_p_eval_us: {int((tl.t_tok[0] - tl.t_echo) * 1e6)}\n"
            f"t_eval_us: {int(sum(gaps) * 1e6)}\nt_sample_us: 0\nn_gpu_layers: 0\n")
        return res


# -- the inputs: a vocabulary model with TinyLlama's figures, a workload, a binary -----------------
def write_vocab_model(path: Path, figures: dict = TINYLLAMA, words: int = N_WORDS, extra: tuple[str, ...] = (),
                      name: str | None = None, file_type: int | None = 17) -> Path:
    """A GGUF with the llama architecture keys and an SPM vocabulary (`▁w0`.. then `extra`), and no
    tensors: enough for edgebench to read what it needs (figures, vocabulary) before any query."""
    import gguf

    w = gguf.GGUFWriter(str(path), "llama")
    if name:
        w.add_name(name)
    w.add_context_length(figures["context_length"])
    w.add_block_count(figures["block_count"])
    w.add_embedding_length(figures["embedding_length"])
    if "feed_forward_length" in figures:
        w.add_feed_forward_length(figures["feed_forward_length"])
    w.add_head_count(figures["head_count"])
    w.add_head_count_kv(figures["head_count_kv"])
    if file_type is not None:
        w.add_file_type(file_type)  # 17: Q5_K_M, as the study's model
    w.add_tokenizer_model("llama")
    tokens = ["<unk>", "<s>", "</s>"] + [f"\u2581w{i}" for i in range(words)] + list(extra)
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * len(tokens))
    w.add_token_types([2, 3, 3] + [1] * (words + len(extra)))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def workload_rows(per_category: int, categories=CATEGORIES, nasty: bool = True, seed: int = 0) -> list[dict]:
    """`per_category` queries a category, prompt lengths spread around the category's median (four
    or more queries a category give four lengths, so every plan's selection rule can pick), prompts
    of that many words."""
    rng = random.Random(seed)
    rows = []
    for cat in categories:
        med, max_tokens = SHAPE[cat]
        # from 0.6 to 1.4 times the median, distinct where the range allows, in a shuffled order
        lengths = [max(3, round(med * (0.6 + 0.8 * i / max(1, per_category - 1)))) for i in range(per_category)]
        rng.shuffle(lengths)
        for i, n in enumerate(lengths):
            words = [f"{cat[:4]}{j}" for j in range(n - 1)]
            prompt = " ".join(words) + "?"
            if nasty and i == 0:
                prompt = f"{prompt} {NASTY}"
            rows.append({"id": f"{cat}-{i + 1:02d}", "category": cat, "prompt": prompt, "max_tokens": max_tokens,
                         "prompt_tokens_est": len(prompt.split()) + 1})
    return rows


@contextlib.contextmanager
def nano_board(root: Path):
    """A Jetson Nano's files (model, L4T release, CPU, memory) under EDGEBENCH_SYSROOT, and its
    `nvpmodel -q` and `nvcc --version` on PATH, while the block runs."""
    root = Path(root)
    files = {
        "proc/device-tree/model": NANO_MODEL + "\x00",
        "etc/nv_tegra_release": "# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64\n",
        "proc/cpuinfo": "".join(f"processor\t: {i}\nmodel name\t: ARMv8 Processor rev 1 (v8l)\n\n"
                                for i in range(NANO_CORES)),
        "proc/meminfo": f"MemTotal: {NANO_MEM_KB} kB\nMemAvailable: 3000000 kB\nSwapTotal: 2029852 kB\n"
                        "SwapFree: 2029852 kB\n",
        "bin/nvpmodel": "#!/bin/sh\necho 'NV Power Mode: MAXN'\necho 0\n",
        "bin/nvcc": "#!/bin/sh\necho 'Cuda compilation tools, release 10.2, V10.2.300'\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
        if rel.startswith("bin/"):
            (root / rel).chmod(0o755)
    from orchestrator.envvars import environ

    with environ(EDGEBENCH_SYSROOT=str(root), PATH=f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"):
        yield root


@contextlib.contextmanager
def _inputs(rows: list[dict]):
    """Model, workload and binary in a scratch folder, on a replayed Nano; gone afterwards."""
    with tempfile.TemporaryDirectory(prefix="edgebench-replay-") as tmp, nano_board(Path(tmp) / "board"):
        tmp = Path(tmp)
        model = write_vocab_model(tmp / "tinyllama-1.1b-chat-v1.0.Q5_K_M.gguf", extra=(NASTY,),
                                  name="TinyLlama-1.1B-Chat-v1.0 (replayed vocabulary, no weights)")
        workload = tmp / "workload.jsonl"
        workload.write_text("".join(json.dumps(r) + "\n" for r in rows))
        binary = tmp / "main"
        binary.write_text("#!/bin/sh\n# replay: ReplayMain answers in its place\nexit 0\n")
        binary.chmod(0o755)
        yield model, workload, binary


def _config(model: Path, workload: Path, binary: Path, out_dir: Path, interval_s: float):
    from orchestrator import runconfig

    return runconfig.resolve(binary=binary, model=model, workload=workload, out_dir=out_dir, threads=NANO_CORES,
                             interval_s=interval_s, idle_window_s=IDLE_WINDOW_S)


# The session's idle-power window waits this long (real time) before a folder's first query: one
# reading interval (0.5 s at most here), so the replayed sampler reads the idle board at least once.
IDLE_WINDOW_S = 0.5
GENERATED = {"generated": True, "replay": "orchestrator/report/replay.py: a replayed board, not a measurement"}


# -- folders ------------------------------------------------------------------------------------
def make_run(run_dir: Path, *, per_category: int = 3, categories=CATEGORIES, gpu: str = "jtop",
             interval_s: float = RunConfig.interval_s, granular_s: float | None = 0.01, warmup: int = 0,
             repeat: int = 1, max_tokens: tuple[int, ...] = (), nasty: bool = True, seed: int = 0) -> Path:
    """A finished run through the real Session: `per_category` queries per category, `warmup` and
    `repeat` per item, each at every `max_tokens` (a variant) when given; readings every `interval_s`,
    and the first query of each category sampled every `granular_s` (a variant of its own)."""
    from orchestrator import session as sess
    from orchestrator.planning import plan_items

    rows = workload_rows(per_category, categories, nasty, seed)
    first = {r["id"] for r in rows if r["id"].endswith("-01")}
    variants = [{"max_tokens": n} for n in max_tokens] or [{}]

    def items(queries: list) -> list:
        out = []
        for q in queries:
            fine = {"interval_s": granular_s} if granular_s and q.id in first else {}
            out += plan_items([q], warmup, repeat, [{**v, **fine} for v in variants])
        return out

    board = Board()
    with _inputs(rows) as (model, workload, binary):
        cfg = _config(model, workload, binary, Path(run_dir).parent, interval_s)
        s = sess.Session.create(cfg, items_for=items, run_dir=Path(run_dir), samplers=samplers(board, gpu, interval_s),
                                executor=ReplayMain(board, seed), extra_manifest=GENERATED, log=lambda *a: None)
        s.run()
    return Path(run_dir)


def make_experiment_all(exp_dir: Path, *, per_category: int = 6, gpu: str = "jtop", repeat: int | None = None,
                        seed: int = 0) -> Path:
    """`experiment all` (the study's five plans, experiments/runner.py) on the replayed board."""
    from orchestrator.experiments import index
    from orchestrator.experiments import runner as xrun
    from orchestrator.store import RunStore

    rows = workload_rows(per_category, CATEGORIES, True, seed)
    board = Board()
    with _inputs(rows) as (model, workload, binary):
        base = _config(model, workload, binary, Path(exp_dir).parent, RunConfig.interval_s)
        exp_dir, _ = xrun.create_all(base, repeat=repeat, exp_dir=Path(exp_dir))
        xrun.run_all(exp_dir, run_session=lambda s, part: s.run(), executor=ReplayMain(board, seed),
                     samplers=samplers(board, gpu, base.interval_s), log=lambda *a: None)
    data = index.read(exp_dir)
    index.write(exp_dir, {**data, **GENERATED})
    for part in data["parts"]:
        store = RunStore.open(index.part_dir(exp_dir, part))
        store.update_manifest(**GENERATED)
    return exp_dir


def nano_gpu(run_dir: Path) -> Path:
    """The committed tests/data/runs/nano-gpu: two simple queries on a replayed Nano with jtop,
    readings every 0.5 s and every 10 ms for simple-01. Regenerate it with
    `python -m orchestrator.report.replay tests/data/runs/nano-gpu` (the folder must not exist)."""
    from orchestrator.store import LOCK

    run = make_run(Path(run_dir), per_category=2, categories=("simple",), seed=7)
    (run / LOCK).unlink(missing_ok=True)  # the store's lock file: nothing to keep
    return run


if __name__ == "__main__":
    import sys

    print(nano_gpu(Path(sys.argv[1])))
