"""The load folder (`edgebench load --out DIR`): the only module that names its files and keys.

    load.json        the plan (config, slots, budget, profile, points), status, and at the end `results`
    requests.jsonl   one line per finished request, appended and fsync'd as it finishes
    points.jsonl     one line per finished load point: its window, the client's and server's CPU, samplers' figures
    samples.jsonl    every sampler reading, with its load point
    server/          the server's working folder and log (engine/llama_server.py)

A load point run again after an interruption gets the next `attempt` number; readers keep the
requests of the attempt that finished (points.jsonl names it)."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator import fields as F
from orchestrator import fsutil, store
from orchestrator.errors import UserError

SCHEMA_VERSION = 1
KIND = "load"
LOAD_JSON = "load.json"
REQUESTS = "requests.jsonl"
POINTS = "points.jsonl"
SAMPLES = store.SAMPLES  # sampler readings, as a run folder keeps them (with their load point)
REPORT_HTML = "load.html"
FIGURE = "load-{}.png"  # latency, goodput, energy

# keys of a request line (figures shared with query records use orchestrator/fields.py's names)
POINT = "point"  # index of the load point in the plan
ATTEMPT = "attempt"  # how many times that point was started before (a resume starts it again)
SEQ = "seq"  # the request's place in its point's schedule
SCHEDULED_S = "scheduled_s"  # its deadline, seconds after the point's start
SENT_S = "sent_s"  # when its bytes went to the kernel, seconds after the point's start
SEND_LAG_S = "send_lag_s"  # sent − scheduled
END_S = "end_s"  # its answer's last byte, seconds after the point's start
E2E_S = "e2e_s"  # end − sent: what the caller waited
IN_FLIGHT = "in_flight_at_send"  # this client's other requests unanswered when it was sent
QUEUE_WAIT_S = "queue_wait_s"  # TTFT minus the server's prompt_ms: waiting for a slot or a batch, and HTTP

# keys of a request line's `validation` (F.VALIDATION): the engine's checks against the server's
# timings (engine/metrics.py writes them), and those the load client set aside (client.without_own_queue)
CHECKS = "checks"
CHECK_OK = "ok"  # every check kept passed
SKIPPED = "skipped"  # check name -> the check and why it was set aside
PREFILL = "prefill"  # the check of TTFT against the server's prompt time
WHY = "why"

# keys of a point line
WINDOW_S = "window_s"
CLIENT_CPU_S = "client_cpu_s"
SERVER_CPU_S = "server_cpu_s"
SERVER_PEAK_RSS_BYTES = "server_peak_rss_bytes"
SERVER_PID = "server_pid"
SAMPLER_FIGURES = "samplers"

# key of a samples.jsonl line besides its load point and attempt: the sampler that read it
SAMPLER = "sampler"

# load.json's own keys: the plan and the server's facts, the sweep's state, at the end its `results`
SCHEMA = "schema_version"
DOC_KIND = "kind"  # KIND: what tells a load folder from a run folder
CREATED_AT = "created_at"
FINISHED_AT = "finished_at"
STATUS = "status"  # RUNNING, INTERRUPTED or COMPLETE
CONFIG = "config"  # the RunConfig (config.RunConfig.to_json)
SLOTS = "slots"
CTX_PER_SLOT = "ctx_per_slot"
SLO = "slo"  # the budget (orchestrator/slo.py names its keys)
SWEEP = "sweep"  # SWEEP_ON, ARRIVALS, SEED, FRACTIONS
PLAN = "points"  # the load points in the order they run (a plan entry's keys below)
MIX = "mix"
WORKLOAD = "workload"
PLATFORM = "platform"
BINARY = "binary"
MODEL = "model"
SERVER = "server"  # the server's facts once it came up
SAMPLERS = "samplers"  # each sampler's info
RESULTS = "results"
RUNNING, INTERRUPTED, COMPLETE = "running", "interrupted", "complete"

# keys of load.json's `sweep`
SWEEP_ON = "on"  # --sweep: rates chosen after the synchronous point
ARRIVALS = "arrivals"
SEED = "seed"  # also a plan entry's: its Poisson gaps
FRACTIONS = "fractions"  # of the suggested capacity, once the rates are chosen

# keys of a plan entry (profile.Point.to_json, and the label people read); a point's figures repeat them
POINT_KIND = "kind"  # one of profile.KINDS
N = "n"  # requests
RATE = "rate"  # offered requests per second (open loop)
CONCURRENCY = "concurrency"  # workers (closed loop)
LABEL = "label"

# keys of load.json's `results`
RESULT_POINTS = "points"  # every finished point's figures
KNEE = "knee"
ANSWER = "answer"  # the knee in one sentence

# keys of a point's figures in `results` (besides the plan entry's)
INDEX = "index"  # the point's place in the plan
N_SENT = "n_sent"
N_OK = "n_ok"
N_FAILED = "n_failed"
N_MET = "n_met"  # requests that met the budget
SLO_ATTAINMENT = "slo_attainment"
SUSTAINED = "sustained"
DURATION_S = "duration_s"  # first send to last answer
ACHIEVED_RPS = "achieved_rps"
THROUGHPUT_RPS = "throughput_rps"
GOODPUT_RPS = "goodput_rps"
TOKEN_THROUGHPUT_TOK_S = "token_throughput_tok_s"
OUTPUT_TOKENS = F.OUTPUT_TOKENS
SEND_LAG_FLAG = "send_lag_flag"  # p99 send lag above point.LAG_BOUND_S: client-bound
VALIDATED = "validated"  # N, VALIDATED_OK, PREFILL_SKIPPED
CLIENT_CPU_PER_REQUEST_S = "client_cpu_per_request_s"
ENERGY_J = F.ENERGY_J
ENERGY_PER_REQUEST_J = "energy_per_request_j"
ENERGY_PER_TOKEN_J = F.ENERGY_PER_TOKEN_J
TEMP_PEAK_C = F.TEMP_PEAK_C
THROTTLED = F.THROTTLED
GPU_LOAD_MEAN_PCT = "gpu_load_mean_pct"

# keys of a point's `validated`: requests checked against the server's timings (and N of them)
VALIDATED_OK = CHECK_OK
PREFILL_SKIPPED = "prefill_skipped"

# a point's distributions, each as the percentile keys below (stats.describe's names)
TTFT, TPOT, E2E, QUEUE_WAIT = "ttft", "tpot", "e2e", "queue_wait"
TBT = "tbt"  # every gap of every ok request
SEND_LAG = "send_lag"
MEAN, P50, P90, P99, MAX = "mean", "p50", "p90", "p99", "max"
PCT_KEYS = (N, MEAN, P50, P90, P99, MAX)

# keys of the knee in `results` (RATE: the highest rate sustained with every lower one)
INTERVAL = "interval"  # [RATE, FIRST_UNSUSTAINED]
FIRST_UNSUSTAINED = "first_unsustained"

# every key with a unit of a request line, a point line and a point's `results` (docs/load.md names them)
UNIT_KEYS = (SCHEDULED_S, SENT_S, SEND_LAG_S, END_S, E2E_S, QUEUE_WAIT_S, WINDOW_S, CLIENT_CPU_S, SERVER_CPU_S,
             SERVER_PEAK_RSS_BYTES, DURATION_S, CLIENT_CPU_PER_REQUEST_S, TOKEN_THROUGHPUT_TOK_S,
             ENERGY_PER_REQUEST_J, ENERGY_PER_TOKEN_J)


def create(folder: Path, doc: dict) -> None:
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UserError(f"{folder} already exists and is not empty; a load sweep needs a folder of its own",
                        fix=f"edgebench load --resume {folder} to finish it, or --out a new folder")
    folder.mkdir(parents=True, exist_ok=True)
    write_doc(folder, {SCHEMA: SCHEMA_VERSION, DOC_KIND: KIND, **doc})
    for name in (REQUESTS, POINTS, SAMPLES):
        (folder / name).touch()


def is_load(folder: Path) -> bool:
    try:
        return read_doc(folder).get(DOC_KIND) == KIND
    except (OSError, ValueError, UserError):
        return False


def write_doc(folder: Path, doc: dict) -> None:
    text = json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False, default=str)
    fsutil.atomic_write(Path(folder) / LOAD_JSON, (text + "\n").encode("utf-8"))


def read_doc(folder: Path) -> dict:
    path = Path(folder) / LOAD_JSON
    if not path.is_file():
        raise UserError(f"{folder} is not a load folder (no {LOAD_JSON})",
                        fix="pass the folder `edgebench load --out DIR` wrote")
    doc = json.loads(path.read_text(encoding="utf-8"))
    if doc.get(SCHEMA) != SCHEMA_VERSION:
        raise UserError(f"{path} has schema version {doc.get(SCHEMA)}; this edgebench reads "
                        f"{SCHEMA_VERSION}", fix="use the edgebench version that wrote it")
    return doc


def append(folder: Path, name: str, rows: list[dict]) -> None:
    store.append_lines(Path(folder) / name, rows)


def read(folder: Path, name: str) -> list[dict]:
    return store.read_lines(Path(folder) / name)


def finished_points(folder: Path) -> dict[int, dict]:
    """point index -> its point line, for every load point that ran to its end (the last attempt wins)."""
    return {p[POINT]: p for p in read(folder, POINTS)}


def kept_requests(folder: Path) -> list[dict]:
    """The requests of each finished point's finishing attempt: an interrupted attempt's are left out."""
    done = {i: p[ATTEMPT] for i, p in finished_points(folder).items()}
    return [r for r in read(folder, REQUESTS) if done.get(r[POINT]) == r[ATTEMPT]]
