"""Serve reports/ read-only over HTTP, for browsing a board's reports from a laptop through an
SSH tunnel. Static files under reports/ only: GET and HEAD, nothing that writes, no path that
leaves the folder (`..`, or a symlink pointing out), listings of folders inside it only."""

from __future__ import annotations

import getpass
import http.server
import os
import socket
import urllib.parse
from functools import partial
from pathlib import Path

from orchestrator.errors import UserError


class ReportHandler(http.server.SimpleHTTPRequestHandler):
    server_version = "edgebench-serve"
    sys_version = ""

    def _refuse_method(self):
        self.send_response(405)
        self.send_header("Allow", "GET, HEAD")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _refuse_method

    def _outside(self) -> bool:
        """A `..` segment is refused outright rather than normalised away: the client asked for
        something outside; and a symlink inside that resolves outside is refused too."""
        raw = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        if any(seg == ".." for seg in raw.replace("\\", "/").split("/")):
            return True
        root = os.path.realpath(self.directory)
        target = os.path.realpath(self.translate_path(self.path))
        return os.path.commonpath([root, target]) != root

    def send_head(self):
        if self._outside():
            self.send_error(403, "outside the reports folder")
            return None
        return super().send_head()


def make_server(reports: Path, host: str = "127.0.0.1", port: int = 8000) -> http.server.ThreadingHTTPServer:
    reports = Path(reports)
    if not reports.is_dir():
        raise UserError(f"{reports} does not exist: there is nothing to serve yet",
                        fix="edgebench run, then edgebench report (renders reports/index.html)")
    handler = partial(ReportHandler, directory=str(reports.resolve()))
    try:
        return http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as e:
        raise UserError(f"cannot listen on {host}:{port} ({e.strerror})",
                        fix=f"edgebench serve --port {port + 1} (or stop what holds port {port})") from None


def tunnel_line(host: str, port: int) -> str:
    """The command a laptop runs to reach this server through SSH."""
    user = getpass.getuser()
    name = socket.gethostname()
    remote = "127.0.0.1" if host in ("127.0.0.1", "localhost", "::1") else host
    return f"ssh -L {port}:{remote}:{port} {user}@{name}   then open http://127.0.0.1:{port}/"


def local_only(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")
