"""The record vocabulary: every field of a query record (a line of queries.jsonl) and of a sampler
reading (a line of samples.jsonl), with its type, unit, meaning and the component that writes it.

Writers and readers take names from here, never from string literals of their own, so a renamed
field breaks at import or in a test instead of leaving a figure silently empty. The field tables of
docs/measurement.md and the whole of docs/report-columns.md are generated from these declarations
(`python -m orchestrator.fieldsdoc`), and tests/test_fields.py fails when a real writer emits a field
that is not declared here, or when a declared field is produced by no writer.

Names whose middle is chosen at run time (a power rail, a thermal zone, a CPU core) are declared as
patterns: `power_{rail}_mw` matches `power_pom_5v_gpu_mw`. Pattern declarations return the pattern
itself.

The measuring process imports this module, so it stays plain Python (no polars, no numpy).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Where a field is written. Each is one module; docs name it so a reader knows whom to ask.
STREAM = "engine/metrics.py (the stream's timestamps)"
ENGINE = "engine/llama_main.py"
SERVER = "engine/llama_server.py"
SESSION = "session.py"
PROCESS = "sampling/process.py"
GPU = "sampling/derive.py (any GPU sampler)"
EXPERIMENT = "experiments/runner.py"
GATE = "experiments/thermal.py"
POLLING = "sampling/polling.py"
JTOP = "sampling/jtop.py"
TEGRASTATS = "sampling/tegrastats_format.py"
SYSFS = "sampling/sysfs.py"
NVML = "sampling/nvml.py"
STORE = "store.py"
GPU_SAMPLERS = f"{JTOP}, {TEGRASTATS}, {SYSFS}, {NVML}"


@dataclass(frozen=True)
class Field:
    name: str  # the name, or a pattern with one {placeholder}
    type: str  # str, int, float, bool, list[float], list[str], dict
    unit: str  # s, bytes, %, mW, °C, J, MHz, tok/s, or "" for none
    meaning: str
    writer: str
    group: str  # the docs section it is listed in
    column: bool = False  # a column of queries.csv / queries.parquet

    @property
    def is_pattern(self) -> bool:
        return "{" in self.name

    @property
    def regex(self) -> re.Pattern:
        return re.compile("^" + re.sub(r"\\\{\w+\\\}", "[a-z0-9_]+?", re.escape(self.name)) + "$")


RECORD: dict[str, Field] = {}
READING: dict[str, Field] = {}
# Columns of queries.csv that the report derives from a record (or from the folder it sits in).
DERIVED: dict[str, Field] = {}


def _declare(table: dict, name, type_, unit, meaning, writer, group, column=False) -> str:
    if name in table:
        raise ValueError(f"field {name} declared twice")
    table[name] = Field(name, type_, unit, meaning, writer, group, column)
    return name


def _rec(name, type_, unit, meaning, writer, group, column=True) -> str:
    return _declare(RECORD, name, type_, unit, meaning, writer, group, column)


def _read(name, type_, unit, meaning, writer, group="reading") -> str:
    return _declare(READING, name, type_, unit, meaning, writer, group)


# -- a query record: identity (session and engine) -----------------------------------------
QUERY_ID = _rec("query_id", "str", "", "the workload query's id", ENGINE, "identity")
CATEGORY = _rec("category", "str", "", "simple, complex, conversational, task-oriented or contextual", ENGINE,
                "identity")
ENGINE_NAME = _rec("engine", "str", "",
                   "the engine that answered the query (`--engine`: main, one process per query, unless another "
                   "was chosen); docs/engines.md says how each figure is obtained per engine", SESSION,
                   "identity")
ATTEMPT = _rec("attempt", "str", "", "a random id for this attempt; its readings in samples.jsonl carry it too",
               ENGINE, "identity")
STATUS = _rec("status", "str", "",
              "`ok`; `error` (non-zero exit, or no YAML written); `crashed` (killed by a signal, e.g. SIGSEGV); "
              "`idle_timeout` (printed nothing for `--idle-timeout` s, killed); `timeout` (ran past `--timeout` s, "
              "killed); `spawn_error` (could not start); `too_long` (prompt + output cannot fit the model's training "
              "context, never started)", ENGINE, "identity")
EXIT_CODE = _rec("exit_code", "int", "", "main's exit status (empty when killed by a signal)", ENGINE, "identity")
SIGNAL = _rec("signal", "int", "", "the signal that ended main, if any", ENGINE, "identity")
ERROR = _rec("error", "str", "", "why the attempt failed (empty when ok)", ENGINE, "identity")
STDERR_TAIL = _rec("stderr_tail", "str", "", "the last 2000 characters of main's stderr, kept for every failure",
                   ENGINE, "identity", column=False)
MAX_TOKENS = _rec("max_tokens", "int", "", "output-token limit passed to main (-n)", ENGINE, "identity")
IGNORE_EOS = _rec("ignore_eos", "bool", "", "main ran with --ignore-eos, so it generated exactly max_tokens",
                  ENGINE, "identity")
PROMPT_TOKENS_EST = _rec("prompt_tokens_est", "int", "",
                         "the workload's prompt token count (llama.cpp's tokenize), used to size the context",
                         ENGINE, "identity")
PROMPT_TOKENS = _rec("prompt_tokens", "int", "", "prompt tokens llama.cpp evaluated (from its YAML log, BOS included)",
                     ENGINE, "identity")
CTX_SIZE = _rec("ctx_size", "int", "",
                "-c passed to main: prompt + max_tokens + 8, rounded up to a multiple of 64, at least 512", ENGINE,
                "identity")
LLAMA = _rec("llama", "dict", "",
             "llama.cpp's own account: from the YAML `t_load_us`, `t_p_eval_us`, `t_eval_us`, `t_sample_us`, "
             "`n_p_eval`, `n_eval`, `n_sample`, `ts_p_eval`, `ts_eval`, `n_gpu_layers`, `ctx_size`, `batch_size`, "
             "`threads`, `seed`, `cpu_has_cublas`, `n_predict`, `ignore_eos`; from its stderr `kv_self_mib`, "
             "`offloaded_layers` (\"5/23\"), `cpu_buffer_mib`, `cuda_buffer_mib`, `compute_buffer_mib`",
             ENGINE, "identity", column=False)
VALIDATION = _rec("validation", "dict", "", "the stream's figures checked against llama.cpp's own timers (below)",
                  ENGINE, "identity", column=False)
SAMPLERS = _rec("samplers", "list[str]", "", "the names of the samplers that watched this attempt", ENGINE,
                "identity", column=False)
RAW_DIR = _rec("raw_dir", "str", "", "the attempt's folder under raw/ (stream, stderr, llama.cpp's YAML)", SESSION,
               "identity", column=False)
OUTPUT_TEXT = _rec("output_text", "str", "",
                   "the generated text, decoded from the output token ids (with replacement; always HTML-escaped)",
                   ENGINE, "identity")
MAIN_CPU_S = _rec("main_cpu_s", "float", "s", "user + system CPU time of main, from wait4", ENGINE, "identity")
HARNESS_CPU_S = _rec("harness_cpu_s", "float", "s",
                     "edgebench's own CPU time during the attempt (streaming, sampling threads)", ENGINE, "identity")
PEAK_RSS_KERNEL_BYTES = _rec("peak_rss_kernel_bytes", "int", "bytes",
                             "the kernel's high-water mark of main's resident memory (wait4's ru_maxrss)", ENGINE,
                             "identity")

# -- the resident server engine (engine/llama_server.py) ----------------------------------------
SERVER_PID = _rec("server_pid", "int", "",
                  "the server process that answered (engine `server`); it changes when the server was restarted",
                  SERVER, "identity")
SERVER_RESTART = _rec("server_restart", "dict", "",
                      "the server was (re)started for this query (engine `server`): `reason` (it died while "
                      "answering this query, or this query needs other settings), `previous_pid`, `previous_end` "
                      "(how it ended), `previous_log_tail`, the new `pid`, `port` and `load_s`",
                      SERVER, "identity", column=False)

# -- the stream's figures ---------------------------------------------------------------------
T_ECHO_S = _rec("t_echo_s", "float", "s", "`t_echo − t_spawn`", STREAM, "stream", column=False)
LOAD_S = _rec("load_s", "float", "s",
              "`t_echo − t_spawn`: process start, model load (mmap, and upload to the GPU with `-ngl`), context "
              "set-up", STREAM, "stream")
TTFT_S = _rec("ttft_s", "float", "s",
              "`t_tok[0] − t_echo`: prefill of the whole prompt plus sampling the first token; the study's TTFT, "
              "model load not included", STREAM, "stream")
COLD_TTFT_S = _rec("cold_ttft_s", "float", "s",
                   "`t_tok[0] − t_spawn`: what a caller who launches main for each query waits for the first token "
                   "(model load included)", STREAM, "stream")
TBT_S = _rec("tbt_s", "list[float]", "s",
             "every `t_tok[i] − t_tok[i−1]`, i ≥ 1: each gap between two generated tokens (TTFT is never in it)",
             STREAM, "stream", column=False)
T_TOK_S = _rec("t_tok_s", "list[float]", "s", "every `t_tok[i] − t_spawn`, so any other figure can be recomputed",
               STREAM, "stream", column=False)
TPOT_S = _rec("tpot_s", "float", "s",
              "`(t_tok[last] − t_tok[0]) / (output_tokens − 1)`: mean time per output token after the first", STREAM,
              "stream")
TOTAL_S = _rec("total_s", "float", "s", "`t_exit − t_spawn`: the whole query, exit and reaping included", STREAM,
               "stream")
OUTPUT_TOKENS = _rec("output_tokens", "int", "", "generated tokens seen in the stream", STREAM, "stream")
DECODE_TOK_S = _rec("decode_tok_s", "float", "tok/s", "`1 / tpot_s`: decode speed", STREAM, "stream")
PREFILL_TOK_S = _rec("prefill_tok_s", "float", "tok/s", "`prompt_tokens / ttft_s`: prefill speed", STREAM, "stream")

# -- the process sampler's per-query figures ----------------------------------------------------
PEAK_RSS_BYTES = _rec("peak_rss_bytes", "int", "bytes",
                      "the larger of the kernel's high-water mark and the largest sampled `rss_bytes`: the kernel "
                      "catches a peak between two samples, and its per-CPU counters can lag a sample by a few pages",
                      PROCESS, "process")
PEAK_RSS_SAMPLED_BYTES = _rec("peak_rss_sampled_bytes", "int", "bytes", "the largest sampled `rss_bytes` alone",
                              PROCESS, "process")
CPU_MEAN_PCT = _rec("cpu_mean_pct", "float", "%",
                    "mean of main's `cpu_pct` readings (summed over cores), the first reading of each query left "
                    "out; a query that ended before its second reading has `main_cpu_s` / `total_s` instead "
                    "(the kernel's count over its life, summed over cores)",
                    PROCESS, "process")
CPU_LIFE_PCT_NORM = _rec("cpu_life_pct_norm", "float", "%",
                         "`main_cpu_s` / `total_s` / logical cores: main's CPU use over its whole life, 100 "
                         "meaning every core busy throughout. The kernel's own count, so a query shorter than "
                         "one sampling interval has it too", PROCESS, "process")

# -- a GPU sampler's per-query figures (sampling/derive.py) ---------------------------------------
GPU_LOAD_PREFILL_MEAN_PCT = _rec("gpu_load_prefill_mean_pct", "float", "%",
                                 "mean GPU load of the readings stamped in [t_echo, first token)", GPU, "gpu")
GPU_LOAD_PREFILL_PEAK_PCT = _rec("gpu_load_prefill_peak_pct", "float", "%", "the highest of those readings", GPU,
                                 "gpu")
GPU_LOAD_PREFILL_N = _rec("gpu_load_prefill_n", "int", "",
                          "how many readings fell in prefill: at 500 ms a short prefill usually has none", GPU, "gpu")
GPU_LOAD_DECODE_MEAN_PCT = _rec("gpu_load_decode_mean_pct", "float", "%",
                                "mean GPU load of the readings stamped in [first token, last token]", GPU, "gpu")
GPU_LOAD_DECODE_PEAK_PCT = _rec("gpu_load_decode_peak_pct", "float", "%", "the highest of those readings", GPU, "gpu")
GPU_LOAD_DECODE_N = _rec("gpu_load_decode_n", "int", "", "how many readings fell in decode", GPU, "gpu")
GPU_MEM_PEAK_BYTES = _rec("gpu_mem_peak_bytes", "int", "bytes",
                          "peak GPU memory of main (its `gpu_mem_proc_bytes` readings)", GPU, "gpu")
GPU_SHARED_MEM_PEAK_BYTES = _rec("gpu_shared_mem_peak_bytes", "int", "bytes",
                                 "peak shared (GPU/NvMap) memory of the board (its `ram_shared_bytes` readings)", GPU,
                                 "gpu")
ENERGY_J = _rec("energy_j", "float", "J",
                "the board's energy over the whole query [0, t_exit]: trapezoid integral of `power_total_mw` over "
                "the readings inside it, the first reading's power held back to 0 and the last one's held to t_exit",
                GPU, "gpu")
ENERGY_WINDOW_S = _rec("energy_window_s", "float", "s",
                       "the span between the first and the last power reading inside the query: the part of "
                       "`energy_j` measured rather than held", GPU, "gpu")
ENERGY_COVERAGE = _rec("energy_coverage", "float", "",
                       "`energy_window_s / t_exit`: the share of the query that power readings span (1 = all of it)",
                       GPU, "gpu")
ENERGY_COVERAGE_LOW = _rec("energy_coverage_low", "bool", "",
                           "`energy_coverage` is below 0.9: most of the energy is measured, but a short query's figure "
                           "leans on held readings; sample faster (--interval) to compare J/token across categories",
                           GPU, "gpu")
ENERGY_PER_TOKEN_J = _rec("energy_per_token_j", "float", "J", "`energy_j / output_tokens`", GPU, "gpu")
IDLE_POWER_MW = _rec("idle_power_mw", "float", "mW",
                     "the board's idle power, measured in the same run before its first query (the manifest's "
                     "`idle_power`); empty when the run measured none", GPU, "gpu")
ENERGY_NET_J = _rec("energy_net_j", "float", "J",
                    "`energy_j − idle_power_mw / 1000 · t_exit`: the energy the query cost above the board idling",
                    GPU, "gpu")
ENERGY_NET_PER_TOKEN_J = _rec("energy_net_per_token_j", "float", "J", "`energy_net_j / output_tokens`", GPU, "gpu")
ENERGY_RAIL_J = _rec("energy_{rail}_j", "float", "J", "the same integral (edges held) for one power rail", GPU, "gpu",
                     column=False)
TEMP_PEAK_C = _rec("temp_peak_c", "float", "°C",
                   "the highest temperature read in the query, leaving out the Nano's PMIC sensor (a fixed 100 °C)",
                   GPU, "gpu")
THROTTLED = _rec("throttled", "bool", "",
                 "the GPU was loaded (≥ 90 %) with its clock below the maximum in force for consecutive readings "
                 "spanning ≥ 0.25 s; empty when no reading had load, clock and maximum", GPU, "gpu")
RSS_NOTE = _rec("rss_note", "str", "",
                "with -ngl: CUDA allocations on a Jetson's shared memory are not in RSS", GPU, "gpu", column=False)

# -- the plan's item, the experiment, the gate ------------------------------------------------------
PHASE = _rec("phase", "str", "",
             "`warmup` or `measure`; warm-ups are recorded, marked and left out of every statistic", SESSION, "plan")
REPETITION = _rec("repetition", "int", "", "0-based index within its phase", SESSION, "plan")
VARIANT = _rec("variant", "dict", "",
               "the per-query settings that differ from the run's, e.g. `{\"max_tokens\": 10}`; `{}` for none",
               SESSION, "plan", column=False)
VARIANT_ID = _rec("variant_id", "str", "", "the variant as `key=value,...` (empty for none)", SESSION, "plan")
N_SAMPLES = _rec("n_samples", "int", "", "sampler readings stored for this attempt", SESSION, "plan")
EXPERIMENT_TAG = _rec("experiment", "dict", "", "`{name, part}` of the experiment that ran the attempt", EXPERIMENT,
                      "plan", column=False)
GATE_NOTE = _rec("gate", "dict", "",
                 "what the thermal gate did before the attempt (cooled for, temperature, timed out)", GATE, "plan",
                 column=False)

# -- a sampler reading: what every reading carries --------------------------------------------------
R_QUERY_ID = _read("query_id", "str", "", "the query the reading belongs to", STORE, "common")
R_ATTEMPT = _read("attempt", "str", "", "the attempt the reading belongs to", STORE, "common")
R_SAMPLER = _read("sampler", "str", "", "the sampler that took it", SESSION, "common")
T_S = _read("t_s", "float", "s", "when it was taken, seconds since the spawn (the runner's clock)",
            "every sampler", "common")
DISCARD = _read("discard", "bool", "", "an experiment's settling reading: kept, left out of statistics",
                "experiments/discard.py", "common")
DT_S = _read("dt_s", "float", "s",
             "the interval achieved since the previous reading (empty for the first), so jitter shows in the data",
             POLLING, "common")

# -- the process sampler's readings -------------------------------------------------------------------
RSS_BYTES = _read("rss_bytes", "int", "bytes", "resident memory of main", PROCESS, "process")
CPU_PCT = _read("cpu_pct", "float", "%",
                "CPU of main since the previous reading, summed over cores (busy on 4 cores reads 400)", PROCESS,
                "process")
CPU_PCT_NORM = _read("cpu_pct_norm", "float", "%", "`cpu_pct` / logical cores: 100 means the whole machine", PROCESS,
                     "process")
NUM_THREADS = _read("num_threads", "int", "", "threads of main", PROCESS, "process")
SYS_CPU_PCT = _read("sys_cpu_pct", "float", "%", "the whole machine's CPU since the previous reading", PROCESS,
                    "process")
SYS_MEM_USED_BYTES = _read("sys_mem_used_bytes", "int", "bytes", "the whole machine's memory in use", PROCESS,
                           "process")
SYS_MEM_AVAILABLE_BYTES = _read("sys_mem_available_bytes", "int", "bytes", "the whole machine's memory available",
                                PROCESS, "process")

# -- GPU and board readings (every GPU sampler writes the same names) --------------------------------
GPU_LOAD_PCT = _read("gpu_load_pct", "float", "%", "GPU load (the GPU's own busy counter, shared by every process)",
                     GPU_SAMPLERS, "gpu")
GPU_FREQ_MHZ = _read("gpu_freq_mhz", "float", "MHz", "GPU clock", GPU_SAMPLERS, "gpu")
GPU_FREQ_MAX_MHZ = _read("gpu_freq_max_mhz", "float", "MHz", "the GPU clock's maximum in force", GPU_SAMPLERS, "gpu")
GPU_MEM_PROC_BYTES = _read("gpu_mem_proc_bytes", "int", "bytes",
                           "GPU memory of main (jtop's process table, nvmap debugfs with root, NVML)", GPU_SAMPLERS,
                           "gpu")
GPU_MEM_USED_BYTES = _read("gpu_mem_used_bytes", "int", "bytes", "GPU memory in use by every process (NVML)", NVML,
                           "gpu")
GPU_MEM_BUSY_PCT = _read("gpu_mem_busy_pct", "float", "%", "share of time the GPU memory was read or written (NVML)",
                         NVML, "gpu")
GPU_MEM_FREQ_MHZ = _read("gpu_mem_freq_mhz", "float", "MHz", "GPU memory clock (NVML)", NVML, "gpu")
GPU_GPC_FREQ_MHZ = _read("gpu_gpc{n}_freq_mhz", "float", "MHz", "clock of one GPU cluster (tegrastats on Orin)",
                         TEGRASTATS, "gpu")
RAM_USED_BYTES = _read("ram_used_bytes", "int", "bytes", "the board's RAM in use", f"{JTOP}, {TEGRASTATS}", "gpu")
RAM_TOTAL_BYTES = _read("ram_total_bytes", "int", "bytes", "the board's RAM", TEGRASTATS, "gpu")
RAM_SHARED_BYTES = _read("ram_shared_bytes", "int", "bytes", "shared (GPU/NvMap) memory of the board",
                         f"{JTOP}, {SYSFS}", "gpu")
RAM_LFB_BLOCKS = _read("ram_lfb_blocks", "int", "", "largest free blocks of RAM (fragmentation)", TEGRASTATS, "gpu")
RAM_LFB_BLOCK_BYTES = _read("ram_lfb_block_bytes", "int", "bytes", "size of those blocks", TEGRASTATS, "gpu")
SWAP_USED_BYTES = _read("swap_used_bytes", "int", "bytes", "swap in use", f"{JTOP}, {TEGRASTATS}", "gpu")
SWAP_TOTAL_BYTES = _read("swap_total_bytes", "int", "bytes", "swap size", TEGRASTATS, "gpu")
SWAP_CACHED_BYTES = _read("swap_cached_bytes", "int", "bytes", "swap cached", TEGRASTATS, "gpu")
IRAM_USED_BYTES = _read("iram_used_bytes", "int", "bytes", "IRAM in use (older Jetsons)", TEGRASTATS, "gpu")
IRAM_TOTAL_BYTES = _read("iram_total_bytes", "int", "bytes", "IRAM size", TEGRASTATS, "gpu")
IRAM_LFB_BYTES = _read("iram_lfb_bytes", "int", "bytes", "IRAM's largest free block", TEGRASTATS, "gpu")
EMC_LOAD_PCT = _read("emc_load_pct", "float", "%", "memory controller (EMC) load", f"{JTOP}, {TEGRASTATS}", "gpu")
EMC_FREQ_MHZ = _read("emc_freq_mhz", "float", "MHz", "memory controller (EMC) clock", f"{JTOP}, {TEGRASTATS}", "gpu")
CPU_CORE_ONLINE = _read("cpu{n}_online", "bool", "", "the core is online", TEGRASTATS, "gpu")
CPU_CORE_LOAD_PCT = _read("cpu{n}_load_pct", "float", "%", "one core's load", TEGRASTATS, "gpu")
CPU_CORE_FREQ_MHZ = _read("cpu{n}_freq_mhz", "float", "MHz", "one core's clock", f"{JTOP}, {TEGRASTATS}", "gpu")
POWER_TOTAL_MW = _read("power_total_mw", "float", "mW",
                       "the board's input power (POM_5V_IN on a Nano, VDD_IN on Orin; the rails' sum where no input "
                       "rail is named; the GPU's board power under NVML)", GPU_SAMPLERS, "gpu")
POWER_RAIL_MW = _read("power_{rail}_mw", "float", "mW", "one power rail, instant", GPU_SAMPLERS, "gpu")
POWER_RAIL_AVG_MW = _read("power_{rail}_avg_mw", "float", "mW", "one power rail, tegrastats' running average",
                          TEGRASTATS, "gpu")
TEMP_ZONE_C = _read("temp_{zone}_c", "float", "°C", "one thermal zone (empty: the sensor is off)", GPU_SAMPLERS,
                    "gpu")
ENGINE_ONLINE = _read("{engine}_online", "bool", "", "a hardware engine (APE, NVENC, ...) is on", TEGRASTATS, "gpu")
ENGINE_FREQ_MHZ = _read("{engine}_freq_mhz", "float", "MHz", "a hardware engine's clock", TEGRASTATS, "gpu")
PROC_RSS_BYTES = _read("proc_rss_bytes", "int", "bytes", "main's resident memory as jtop's process table has it",
                       JTOP, "gpu")
TIMESTAMP = _read("timestamp", "str", "", "the date and time an Orin's tegrastats line starts with", TEGRASTATS, "gpu")
UNPARSED = _read("unparsed", "str", "", "the parts of a tegrastats line it did not recognise, kept raw", TEGRASTATS,
                 "gpu")


# -- columns the report derives (report/export.py) --------------------------------------------------
_EXPORT = "report/export.py"
RUN_ID = _declare(DERIVED, "run_id", "str", "", "the run folder the attempt belongs to", _EXPORT, "head", True)
PART = _declare(DERIVED, "part", "str", "", "the experiment part (empty for a plain run)", _EXPORT, "head", True)
EXPERIMENT_NAME = _declare(DERIVED, "experiment", "str", "", "the experiment's name (empty for a plain run)", _EXPORT,
                           "head", True)
VALIDATION_OK = _declare(DERIVED, "validation_ok", "bool", "",
                         "every stream figure agrees with llama.cpp's own timings", _EXPORT, "tail", True)
TBT_MEAN_S = _declare(DERIVED, "tbt_mean_s", "float", "s", "mean gap between consecutive generated tokens", _EXPORT,
                      "tail", True)
# llama.cpp's own figures, lifted out of the record's `llama` dict: (column, key in `llama`, type, meaning)
LLAMA_COLUMNS = (
    ("llama_kv_self_mib", "kv_self_mib", "float", "KV cache size main reported (MiB)"),
    ("llama_n_gpu_layers", "n_gpu_layers", "int", "layers offloaded to the GPU, as main logged them"),
    ("llama_t_load_us", "t_load_us", "float", "llama.cpp's model load time (µs)"),
    ("llama_t_p_eval_us", "t_p_eval_us", "float", "llama.cpp's prompt evaluation time (µs)"),
    ("llama_t_eval_us", "t_eval_us", "float", "llama.cpp's generation time (µs)"),
    ("llama_n_eval", "n_eval", "int", "tokens llama.cpp evaluated after the prompt"),
    ("llama_n_p_eval", "n_p_eval", "int", "prompt tokens llama.cpp evaluated"),
)
for _col, _key, _type, _meaning in LLAMA_COLUMNS:
    _declare(DERIVED, _col, _type, "", _meaning + f" (`llama.{_key}`)", _EXPORT, "tail", True)


def lookup(table: dict[str, Field], name: str) -> Field | None:
    """The declaration a concrete name falls under: itself, else the first pattern it matches."""
    if name in table:
        return table[name]
    for f in table.values():
        if f.is_pattern and f.regex.match(name):
            return f
    return None


def undeclared(table: dict[str, Field], names) -> list[str]:
    return sorted(n for n in set(names) if lookup(table, n) is None)


def columns() -> list[Field]:
    """The columns of queries.csv: where it came from, the record's own scalar fields in
    declaration order, then what the report lifts out of nested ones."""
    head = [f for f in DERIVED.values() if f.group == "head"]
    tail = [f for f in DERIVED.values() if f.group == "tail"]
    return head + [f for f in RECORD.values() if f.column and not f.is_pattern] + tail
