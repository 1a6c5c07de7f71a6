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

# keys of a point line
WINDOW_S = "window_s"
CLIENT_CPU_S = "client_cpu_s"
SERVER_CPU_S = "server_cpu_s"
SERVER_PEAK_RSS_BYTES = "server_peak_rss_bytes"
SAMPLER_FIGURES = "samplers"

# every key with a unit of a request line, a point line and a point's `results` (docs/load.md names them)
UNIT_KEYS = (SCHEDULED_S, SENT_S, SEND_LAG_S, END_S, E2E_S, QUEUE_WAIT_S, WINDOW_S, CLIENT_CPU_S, SERVER_CPU_S,
             SERVER_PEAK_RSS_BYTES, "duration_s", "client_cpu_per_request_s", "token_throughput_tok_s",
             "energy_per_request_j", "energy_per_token_j")


def create(folder: Path, doc: dict) -> None:
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UserError(f"{folder} already exists and is not empty; a load sweep needs a folder of its own",
                        fix=f"edgebench load --resume {folder} to finish it, or --out a new folder")
    folder.mkdir(parents=True, exist_ok=True)
    write_doc(folder, {"schema_version": SCHEMA_VERSION, "kind": KIND, **doc})
    for name in (REQUESTS, POINTS, SAMPLES):
        (folder / name).touch()


def is_load(folder: Path) -> bool:
    try:
        return read_doc(folder).get("kind") == KIND
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
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise UserError(f"{path} has schema version {doc.get('schema_version')}; this edgebench reads "
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
