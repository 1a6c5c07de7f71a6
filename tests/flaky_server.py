"""A real HTTP server on 127.0.0.1 that misbehaves on cue, for the downloader's tests.

Each request takes the next action of the server's `plan` (the last one repeats):
  "ok"        the file, honouring Range with 206 + Content-Range
  "no-range"  the whole file with 200, whatever Range asked
  "drop"      headers announcing the full length, half the body, then the connection closes
  "stall"     headers, half the body, then silence longer than the client's read timeout
  "lie"       Content-Length 100 bytes more than the body, then the connection closes
  int         that HTTP status with an empty body (503, 429, 404, ...)
Every request's Range header (or None) is kept in `seen`."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STALL_S = 2.0  # long enough to outlast the read timeout the tests set, short enough to end


class FlakyServer:
    def __init__(self, payload: bytes, plan: list):
        self.payload, self.plan, self.seen = payload, list(plan), []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                server.serve(self)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/model.gguf"

    def serve(self, h: BaseHTTPRequestHandler) -> None:
        rng = h.headers.get("Range")
        self.seen.append(rng)
        action = self.plan[min(len(self.seen), len(self.plan)) - 1]
        if isinstance(action, int):
            h.send_response(action)
            h.send_header("Content-Length", "0")
            h.send_header("Retry-After", "0")
            h.end_headers()
            return
        start = int(rng.split("=")[1].split("-")[0]) if rng and action != "no-range" else 0
        body = self.payload[start:]
        if start:
            h.send_response(206)
            h.send_header("Content-Range", f"bytes {start}-{len(self.payload) - 1}/{len(self.payload)}")
        else:
            h.send_response(200)
        h.send_header("Content-Length", str(len(body) + (100 if action == "lie" else 0)))
        h.end_headers()
        if action in ("drop", "stall"):
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            if action == "stall":
                time.sleep(STALL_S)
            h.close_connection = True
            return
        h.wfile.write(body)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
