"""A streaming HTTP/1.1 client on a plain socket, for server-sent events: every read is stamped
with `perf_counter_ns` the moment its bytes arrive, and every event with the stamp of the read
that completed it (its last byte), as engine/child.py stamps a pty's chunks. http.client hides
when bytes arrive behind its buffers; this reads what the kernel has, as soon as it has it.

Only what a llama.cpp server answers is understood: a status line, headers, then a body that is
chunked or runs to the connection's close (or its Content-Length). Events are separated by a
blank line; each line of an event is `field: value` (`data:` for the payload, a33e6a0's `error:`
for a failed request)."""

from __future__ import annotations

import json
import select
import socket
import time
from dataclasses import dataclass, field

HOST = "127.0.0.1"  # the only address a server edgebench starts listens on
_WAIT_SLICE_S = 0.25  # a signal taken by another thread is acted on within this long


@dataclass
class Event:
    t_ns: int  # arrival of the read that completed it
    field: str  # "data" or "error"
    data: bytes


@dataclass
class Response:
    t_connect_ns: int  # before connecting
    t_send_ns: int = 0  # just before the request's bytes were handed to the kernel
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    reads: list[tuple[int, int]] = field(default_factory=list)  # (arrival ns, length) of every read
    raw: bytearray = field(default_factory=bytearray)  # the response's bytes as they came
    content: bytearray = field(default_factory=bytearray)  # the body, decoded (chunks joined)
    events: list[Event] = field(default_factory=list)
    complete: bool = False  # the body ended as HTTP says it ends, not cut short
    t_end_ns: int = 0
    outcome: str = "ok"  # ok | refused | closed | idle_timeout | timeout | bad_response
    error: str | None = None

    def json_events(self) -> list[tuple[int, dict]]:
        """The `data:` events that parse as JSON objects, with their arrival."""
        out = []
        for ev in self.events:
            if ev.field != "data":
                continue
            try:
                obj = json.loads(ev.data)
            except ValueError:
                continue
            if isinstance(obj, dict):
                out.append((ev.t_ns, obj))
        return out


class _Body:
    """Incremental decoding of the body: chunked transfer coding, a Content-Length, or until close."""

    def __init__(self, headers: dict[str, str]):
        self.chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length")
        self.left = int(length) if length and length.isdigit() and not self.chunked else None
        self.buf = b""
        self.chunk_left = 0
        self.done = self.left == 0

    def feed(self, data: bytes) -> bytes:
        if not self.chunked:
            if self.left is not None:
                data = data[:self.left]
                self.left -= len(data)
                self.done = self.left == 0
            return data
        self.buf += data
        out = bytearray()
        while not self.done:
            if self.chunk_left:
                take = self.buf[:self.chunk_left]
                out += take
                self.buf = self.buf[len(take):]
                self.chunk_left -= len(take)
                if self.chunk_left:
                    break
                continue
            line, sep, rest = self.buf.partition(b"\r\n")
            if not sep:
                break
            if not line:  # the CRLF that ends a chunk's data
                self.buf = rest
                continue
            size = int(line.split(b";")[0].strip() or b"0", 16)
            self.buf = rest
            if size == 0:
                self.done = True
            self.chunk_left = size
        return bytes(out)


class _Events:
    """Splits the decoded body into events; a blank line ends each."""

    def __init__(self, sink: list[Event]):
        self.buf = b""
        self.sink = sink

    def feed(self, t_ns: int, data: bytes) -> None:
        self.buf += data.replace(b"\r\n", b"\n")
        while b"\n\n" in self.buf:
            block, _, self.buf = self.buf.partition(b"\n\n")
            self._event(t_ns, block)

    def flush(self, t_ns: int) -> None:
        if self.buf.strip():
            self._event(t_ns, self.buf)
        self.buf = b""

    def _event(self, t_ns: int, block: bytes) -> None:
        fields: dict[str, list[bytes]] = {}
        for line in block.split(b"\n"):
            if not line or line.startswith(b":"):
                continue
            name, _, value = line.partition(b":")
            fields.setdefault(name.decode("ascii", "replace").strip(), []).append(value[1:] if value[:1] == b" "
                                                                                     else value)
        for name in ("data", "error"):
            if name in fields:
                self.sink.append(Event(t_ns, name, b"\n".join(fields[name])))
                return


def _request(method: str, path: str, port: int, body: bytes | None) -> bytes:
    head = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}", "Connection: close", "Accept: text/event-stream"]
    if body is not None:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + (body or b"")


def exchange(port: int, method: str, path: str, body: bytes | None, idle_timeout_s: float, timeout_s: float,
             on_wait=None) -> Response:
    """Send one request to 127.0.0.1:`port` and read its whole answer, stamping each read. Never
    raises for what the server does (refusal, a cut connection, silence): `outcome` says it.
    `on_wait(response so far)` runs between reads at least every quarter second (the run's signal check)."""
    res = Response(t_connect_ns=time.perf_counter_ns())
    deadline = res.t_connect_ns + int(timeout_s * 1e9)
    try:
        sock = socket.create_connection((HOST, port), timeout=min(timeout_s, 10.0))
    except OSError as exc:
        res.outcome, res.error, res.t_end_ns = "refused", f"cannot connect to {HOST}:{port}: {exc}", \
            time.perf_counter_ns()
        return res
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        request = _request(method, path, port, body)
        res.t_send_ns = time.perf_counter_ns()
        sock.setblocking(True)
        sock.sendall(request)
        sock.setblocking(False)
        _read(sock, res, deadline, idle_timeout_s, on_wait)
    except OSError as exc:
        res.outcome, res.error = "closed", f"the connection failed: {exc}"
    finally:
        sock.close()
        res.t_end_ns = res.t_end_ns or time.perf_counter_ns()
    return res


def _read(sock: socket.socket, res: Response, deadline: int, idle_timeout_s: float, on_wait) -> None:
    body: _Body | None = None
    events = _Events(res.events)
    idle_deadline = time.perf_counter_ns() + int(idle_timeout_s * 1e9)
    while True:
        now = time.perf_counter_ns()
        if now >= deadline:
            res.outcome, res.error = "timeout", "timeout"
            return
        if now >= idle_deadline:
            res.outcome, res.error = "idle_timeout", "idle_timeout"
            return
        wait = min(deadline, idle_deadline) - now
        ready, _, _ = select.select([sock], [], [], min(wait / 1e9, _WAIT_SLICE_S))
        if on_wait:
            on_wait(res)
        if not ready:
            continue
        data = sock.recv(65536)
        t = time.perf_counter_ns()
        if not data:
            if body is not None and not body.chunked and body.left is None:
                res.complete = True  # a body that runs to the close
            events.flush(t)
            res.t_end_ns = t
            if not res.complete:
                res.outcome, res.error = "closed", "the server closed the connection before the answer ended"
            return
        res.reads.append((t, len(data)))
        res.raw += data
        idle_deadline = t + int(idle_timeout_s * 1e9)
        if body is None:
            head, sep, rest = bytes(res.raw).partition(b"\r\n\r\n")
            if not sep:
                continue
            if not _parse_head(head, res):
                res.outcome, res.error = "bad_response", f"not an HTTP answer: {head[:80]!r}"
                return
            body = _Body(res.headers)
            data = rest
        decoded = body.feed(data)
        res.content += decoded
        events.feed(t, decoded)
        if body.done:
            events.flush(t)
            res.complete, res.t_end_ns = True, t
            return


def _parse_head(head: bytes, res: Response) -> bool:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return False
    res.status = int(parts[1])
    for line in lines[1:]:
        name, _, value = line.partition(":")
        res.headers[name.strip().lower()] = value.strip()
    return True


def get_json(port: int, path: str, timeout_s: float = 5.0) -> tuple[int | None, object]:
    """(status, parsed body or None) of a GET; status None when nothing answered."""
    res = exchange(port, "GET", path, None, timeout_s, timeout_s)
    if res.status is None:
        return None, None
    try:
        return res.status, json.loads(bytes(res.content))
    except ValueError:
        return res.status, None


def free_port() -> int:
    """A port nothing listens on now, on the loopback address (the kernel's choice for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]
