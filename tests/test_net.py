"""Downloads: fail fast offline, resume a partial file, refuse a wrong digest."""

import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from orchestrator import net
from orchestrator.errors import UserError

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class RangeHandler(BaseHTTPRequestHandler):
    requests_seen: list = []

    def do_GET(self):
        rng = self.headers.get("Range")
        RangeHandler.requests_seen.append(rng)
        start = int(rng.split("=")[1].rstrip("-")) if rng else 0
        body = PAYLOAD[start:]
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    RangeHandler.requests_seen = []
    yield f"http://127.0.0.1:{srv.server_address[1]}/file.bin"
    srv.shutdown()


def test_unreachable_host_fails_within_a_second(tmp_path):
    started = time.monotonic()
    with pytest.raises(net.Unreachable):
        net.download("http://127.0.0.1:9/x.bin", tmp_path / "x.bin")
    assert time.monotonic() - started < 1
    assert not (tmp_path / "x.bin").exists()


def test_download_resumes_a_partial_file(server, tmp_path):
    dest = tmp_path / "file.bin"
    (tmp_path / "file.bin.part").write_bytes(PAYLOAD[:1000])
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    net.download(server, dest, sha256=digest, log=lambda s: None)
    assert dest.read_bytes() == PAYLOAD
    assert RangeHandler.requests_seen == ["bytes=1000-"]
    # a finished file with the right digest is not fetched again
    net.download(server, dest, sha256=digest, log=lambda s: None)
    assert len(RangeHandler.requests_seen) == 1


def test_wrong_digest_is_refused_and_nothing_is_kept(server, tmp_path):
    dest = tmp_path / "file.bin"
    with pytest.raises(UserError, match="not the pinned"):
        net.download(server, dest, sha256="0" * 64, log=lambda s: None)
    assert not dest.exists() and not (tmp_path / "file.bin.part").exists()
