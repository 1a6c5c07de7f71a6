"""`edgebench serve` over loopback: files under reports/ only, GET and HEAD only."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import threading

import pytest

from orchestrator.report.serve import make_server


@pytest.fixture
def server(tmp_path):
    reports = tmp_path / "reports"
    (reports / "run1").mkdir(parents=True)
    (reports / "index.html").write_text("<p>index</p>")
    (reports / "run1" / "report.html").write_text("<p>run1</p>")
    (tmp_path / "secret.txt").write_text("TOP-SECRET")
    (reports / "escape").symlink_to(tmp_path)  # a link inside that points out
    srv = make_server(reports, "127.0.0.1", 0)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def request(port: int, method: str, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path)  # http.client sends the path as given, `..` included
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body


def test_serves_the_reports(server):
    assert request(server, "GET", "/") == (200, b"<p>index</p>")
    assert request(server, "GET", "/run1/report.html") == (200, b"<p>run1</p>")
    status, body = request(server, "HEAD", "/run1/report.html")
    assert status == 200 and body == b""


@pytest.mark.parametrize("path", ["/../secret.txt", "/run1/../../secret.txt", "/%2e%2e/secret.txt",
                                  "/run1/%2E%2E/%2E%2E/secret.txt", "/..%2fsecret.txt", "/escape/secret.txt"])
def test_nothing_outside_reports_is_served(server, path):
    status, body = request(server, "GET", path)
    assert status == 403, (path, status)
    assert b"TOP-SECRET" not in body


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_no_method_but_get_and_head(server, method, tmp_path):
    status, _ = request(server, method, "/run1/report.html")
    assert status == 405
    assert (tmp_path / "reports" / "run1" / "report.html").read_text() == "<p>run1</p>"


def test_the_command_binds_localhost_and_prints_the_tunnel_line(tmp_path):
    (tmp_path / "reports").mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "serve", "--port", "0"],
                            env=dict(os.environ, EDGEBENCH_ROOT=str(tmp_path)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(3)]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    assert "read-only on http://127.0.0.1:" in lines[0]
    port = lines[0].rsplit(":", 1)[1].strip(" /\n")
    assert lines[2].strip().startswith(f"ssh -L {port}:127.0.0.1:{port} ")


def test_serving_a_missing_folder_says_what_to_do(tmp_path):
    res = subprocess.run([sys.executable, "-m", "orchestrator", "serve", "--port", "0"],
                         env=dict(os.environ, EDGEBENCH_ROOT=str(tmp_path)), capture_output=True, text=True,
                         timeout=30)
    assert res.returncode != 0
    assert "nothing to serve yet" in res.stderr and "fix: edgebench run" in res.stderr
