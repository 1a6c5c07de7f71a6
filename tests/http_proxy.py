"""A real HTTP proxy on 127.0.0.1 for the network tests: CONNECT tunnels (https) and
absolute-form requests (plain http), as squid answers them. `routes` maps a name the test
invents (host, port) to a local server, so a host that does not resolve is reachable only
through the proxy; every request line is kept in `seen`, every Proxy-Authorization in `auth`."""

from __future__ import annotations

import socket
import socketserver
import threading
from urllib.parse import urlparse


class HttpProxy:
    def __init__(self, routes: dict | None = None, require_auth: str | None = None):
        self.routes, self.require_auth = dict(routes or {}), require_auth
        self.seen: list[str] = []
        self.auth: list[str | None] = []
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                proxy.handle(self)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def handle(self, h: socketserver.StreamRequestHandler) -> None:
        line = h.rfile.readline(4096).decode("latin-1").strip()
        headers = []
        while (header := h.rfile.readline(4096).decode("latin-1")) not in ("\r\n", "\n", ""):
            headers.append(header.strip())
        self.seen.append(line)
        auth = next((v.split(":", 1)[1].strip() for v in headers if v.lower().startswith("proxy-authorization:")),
                    None)
        self.auth.append(auth)
        if self.require_auth and auth != self.require_auth:
            h.wfile.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
            return
        method, target, _ = line.split(" ", 2)
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            upstream = self._connect(host, int(port))
            if upstream is None:
                h.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            h.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            h.wfile.flush()
            self._pipe(h.connection, upstream)
            return
        url = urlparse(target)
        upstream = self._connect(url.hostname, url.port or 80)
        if upstream is None:
            h.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        kept = [v for v in headers if not v.lower().startswith(("proxy-", "connection:"))]
        path = url.path + (f"?{url.query}" if url.query else "")
        upstream.sendall(f"{method} {path or '/'} HTTP/1.0\r\n{''.join(v + chr(13) + chr(10) for v in kept)}"
                         "Connection: close\r\n\r\n".encode("latin-1"))
        self._pipe(h.connection, upstream)

    def _connect(self, host: str, port: int) -> socket.socket | None:
        host, port = self.routes.get((host, port), (host, port))
        try:
            return socket.create_connection((host, port), timeout=5)
        except OSError:
            return None

    @staticmethod
    def _pipe(client: socket.socket, upstream: socket.socket) -> None:
        def copy(src, dst):
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        back = threading.Thread(target=copy, args=(upstream, client), daemon=True)
        back.start()
        copy(client, upstream)
        back.join(2)  # the answer normally ends first; a host that never closes is cut off
        try:
            upstream.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        back.join()
        upstream.close()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
