"""Serve reports/ read-only over HTTP, for browsing a board's reports from a laptop through an
SSH tunnel. Static files under reports/ only: GET and HEAD, nothing that writes, no path that
leaves the folder (`..`, or a symlink pointing out), listings of folders inside it only.

A board serves a few people through a tunnel, so the server is small and hard to tie up: a
connection that sends nothing for `timeout_s` is closed, at most `max_connections` are
served at once (the next one is told 503 at once), and a path no file can have (a NUL byte)
is answered 400, never a dropped connection."""

from __future__ import annotations

import errno
import getpass
import http.server
import os
import socket
import socketserver
import threading
import urllib.parse
from functools import partial
from pathlib import Path

from orchestrator.errors import UserError


class ReportHandler(http.server.SimpleHTTPRequestHandler):
    server_version = "edgebench-serve"
    sys_version = ""

    def __init__(self, *args, timeout_s: float, **kwargs):
        self.timeout = timeout_s  # the socket's: a request half sent and then left ends here
        super().__init__(*args, **kwargs)

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
        if "\x00" in urllib.parse.unquote(self.path):
            self.send_error(400, "no file name holds a NUL byte")
            return None
        try:
            outside = self._outside()
        except ValueError:  # a path the OS cannot even look up
            self.send_error(400, "not a path")
            return None
        if outside:
            self.send_error(403, "outside the reports folder")
            return None
        return super().send_head()


class ReportServer(http.server.ThreadingHTTPServer):
    """ThreadingHTTPServer with a cap on the threads: one per connection, `max_connections` at
    most; the handler's socket timeout ends an idle one."""

    max_connections = 32
    request_queue_size = 64  # a burst of connections waits in the kernel, not in SYN retries

    def server_bind(self):
        if self.address_family == socket.AF_INET6:
            # `::` serves IPv4 too where the system allows it (one server for both)
            try:
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            except OSError:
                pass
        # HTTPServer's own server_bind looks the address up in DNS (getfqdn), which on a board
        # without a network waits for the resolver's timeout; nothing here uses the name.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    def server_activate(self):
        self._slots = threading.BoundedSemaphore(self.max_connections)
        super().server_activate()

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            try:
                request.setblocking(False)
                request.send(b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def make_server(reports: Path, host: str = "127.0.0.1", port: int = 8000, timeout_s: float = 30.0,
                max_connections: int = 32) -> ReportServer:
    reports = Path(reports)
    if not reports.is_dir():
        raise UserError(f"{reports} does not exist: there is nothing to serve yet",
                        fix="edgebench run, then edgebench report (renders reports/index.html)")
    handler = partial(ReportHandler, directory=str(reports.resolve()), timeout_s=timeout_s)
    where = f"{url_host(host)}:{port}"
    other_host = "--host 127.0.0.1 (through an SSH tunnel), or an address `ip -brief address` lists"
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    except socket.gaierror as e:
        raise UserError(f"cannot listen on {where}: {host!r} is not an address of this machine ({e.strerror})",
                        fix=other_host) from None
    server_class = type("Server", (ReportServer,), {"address_family": family, "max_connections": max_connections})
    try:
        return server_class((host, port), handler)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise UserError(f"cannot listen on {where}: port {port} is in use",
                            fix=f"edgebench serve --port {port + 1} (or stop what holds port {port})") from None
        if e.errno == errno.EACCES:
            raise UserError(f"cannot listen on {where}: ports below 1024 need root",
                            fix="edgebench serve --port 8000") from None
        raise UserError(f"cannot listen on {where}: this machine cannot use that address ({e.strerror})",
                        fix=other_host) from None


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def tunnel_line(host: str, port: int) -> str:
    """The command a laptop runs to reach this server through SSH."""
    user = getpass.getuser()
    name = socket.gethostname()
    remote = "127.0.0.1" if host in ("127.0.0.1", "localhost", "::1") else host
    return f"ssh -L {port}:{remote}:{port} {user}@{name}   then open http://127.0.0.1:{port}/"


def local_only(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")
