"""`edgebench serve` over loopback: files under reports/ only, GET and HEAD only."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading

import pytest
from waiting import HANG_S, wait_for

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
        proc.wait(timeout=HANG_S)
    assert "read-only on http://127.0.0.1:" in lines[0]
    port = lines[0].rsplit(":", 1)[1].strip(" /\n")
    assert lines[2].strip().startswith(f"ssh -L {port}:127.0.0.1:{port} ")


def test_serving_a_missing_folder_says_what_to_do(tmp_path):
    res = subprocess.run([sys.executable, "-m", "orchestrator", "serve", "--port", "0"],
                         env=dict(os.environ, EDGEBENCH_ROOT=str(tmp_path)), capture_output=True, text=True,
                         timeout=30)
    assert res.returncode != 0
    assert "nothing to serve yet" in res.stderr and "fix: edgebench run" in res.stderr


@pytest.mark.parametrize("path", ["/%00", "/run1/%00report.html", "/a%00/../index.html"])
def test_a_nul_in_the_path_is_answered_400_and_the_server_goes_on(server, path):
    assert request(server, "GET", path)[0] == 400
    assert request(server, "GET", "/") == (200, b"<p>index</p>")


def test_idle_half_sent_requests_are_closed_and_their_threads_end(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "index.html").write_text("<p>index</p>")
    srv = make_server(reports, "127.0.0.1", 0, timeout_s=0.5, max_connections=8)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    port = srv.server_address[1]

    def handlers() -> int:
        return sum(1 for th in threading.enumerate() if "process_request_thread" in th.name)

    idle = []
    try:
        for _ in range(50):
            s = socket.create_connection(("127.0.0.1", port), timeout=60)
            s.sendall(b"GET /index.html HTTP/1.1\r\nHost: x")  # and never the end of the request
            idle.append(s)
        assert handlers() <= 8  # never one thread per connection
        # every idle connection is closed by the server (EOF, or a 503 then EOF)
        for s in idle:
            data = b""
            while chunk := s.recv(4096):
                data += chunk
            assert data in (b"", b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        assert wait_for(lambda: handlers() == 0), handlers()
        assert request(port, "GET", "/index.html") == (200, b"<p>index</p>")  # and it still serves
    finally:
        for s in idle:
            s.close()
        srv.shutdown()
        srv.server_close()


def test_ipv6_loopback_is_served(tmp_path):
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError:
        pytest.skip("this machine has no IPv6 loopback")
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "index.html").write_text("<p>v6</p>")
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "serve", "--host", "::1", "--port", "0"],
                            env=dict(os.environ, EDGEBENCH_ROOT=str(tmp_path)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert "read-only on http://[::1]:" in first, first + proc.stderr.read()
        port = int(first.rsplit(":", 1)[1].strip(" /\n"))
        conn = http.client.HTTPConnection("::1", port, timeout=30)
        conn.request("GET", "/")
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (200, b"<p>v6</p>")
        conn.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=HANG_S)


def test_an_address_the_machine_cannot_use_is_not_blamed_on_the_port(tmp_path, monkeypatch):
    import errno

    from orchestrator.errors import UserError

    (tmp_path / "reports").mkdir()
    real = socket.socket

    def no_ipv6(family=socket.AF_INET, *args, **kwargs):  # a board whose kernel has IPv6 off
        if family == socket.AF_INET6:
            raise OSError(errno.EAFNOSUPPORT, "Address family not supported by protocol")
        return real(family, *args, **kwargs)

    monkeypatch.setattr(socket, "socket", no_ipv6)
    with pytest.raises(UserError) as err:
        make_server(tmp_path / "reports", "::", 8000)
    assert "cannot listen on [::]:8000: this machine cannot use that address" in str(err.value)
    assert "--port" not in err.value.fix and "--host 127.0.0.1" in err.value.fix


def test_a_port_in_use_suggests_the_next_one(tmp_path):
    from orchestrator.errors import UserError

    (tmp_path / "reports").mkdir()
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        with pytest.raises(UserError) as err:
            make_server(tmp_path / "reports", "127.0.0.1", port)
        assert f"port {port} is in use" in str(err.value) and f"--port {port + 1}" in err.value.fix
    finally:
        taken.close()
