"""Behind a proxy: the reachability probe asks the proxy the environment names (https_proxy,
http_proxy, honouring no_proxy), as the downloads do, instead of opening a socket to a host
only the proxy can reach. Long downloads say how far they are."""

from __future__ import annotations

import io
import re
import socket

import pytest
from flaky_server import FlakyServer
from http_proxy import HttpProxy

from orchestrator import net, progress
from orchestrator.bootstrap import preflight
from orchestrator.bootstrap.steps import Step
from orchestrator.errors import UserError

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
HIDDEN = "files.example.invalid"  # does not resolve: reachable only through the proxy


@pytest.fixture(autouse=True)
def no_proxy_from_the_machine(monkeypatch):
    for var in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)


@pytest.fixture
def host():
    """A listening local port: the far host the proxy reaches."""
    server = socket.create_server(("127.0.0.1", 0))
    yield server.getsockname()[1]
    server.close()


@pytest.fixture
def proxy(host):
    p = HttpProxy(routes={(HIDDEN, 443): ("127.0.0.1", host)})
    yield p
    p.close()


def test_without_a_proxy_the_hidden_host_is_unreachable(host):
    with pytest.raises(net.Unreachable):
        net.probe(f"https://{HIDDEN}/simple/")


def test_the_probe_goes_through_https_proxy(proxy, monkeypatch):
    monkeypatch.setenv("https_proxy", proxy.url)
    net.probe(f"https://{HIDDEN}/simple/")
    assert proxy.seen == [f"CONNECT {HIDDEN}:443 HTTP/1.1"]


def test_the_upper_case_variable_counts_too(proxy, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    net.probe(f"https://{HIDDEN}/simple/")
    assert len(proxy.seen) == 1


def test_no_proxy_sends_the_probe_directly(proxy, host, monkeypatch):
    monkeypatch.setenv("https_proxy", proxy.url)
    monkeypatch.setenv("no_proxy", "localhost,.example.invalid")
    net.probe(f"https://localhost:{host}/")  # answered directly: the local port listens
    with pytest.raises(net.Unreachable):
        net.probe(f"https://{HIDDEN}/simple/")  # bypassed, so not resolvable
    assert proxy.seen == []


def test_a_host_the_proxy_cannot_reach_is_unreachable_and_says_through_which_proxy(proxy, monkeypatch):
    monkeypatch.setenv("https_proxy", proxy.url)
    with pytest.raises(net.Unreachable, match=r"127.0.0.1:9 is unreachable through the proxy 127.0.0.1:\d+ "
                                              r"\(https_proxy\): 502 Bad Gateway"):
        net.probe("https://127.0.0.1:9/")


def test_a_proxy_that_does_not_answer_is_unreachable(monkeypatch):
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    with pytest.raises(net.Unreachable, match=r"the proxy 127.0.0.1:9 \(https_proxy\) is unreachable"):
        net.probe(f"https://{HIDDEN}/")


def test_proxy_credentials_come_from_the_variable(host, monkeypatch):
    p = HttpProxy(routes={(HIDDEN, 443): ("127.0.0.1", host)}, require_auth="Basic dTpwdw==")  # u:pw
    try:
        monkeypatch.setenv("https_proxy", p.url)
        with pytest.raises(UserError) as err:
            net.probe(f"https://{HIDDEN}/")
        assert "asks for credentials (HTTP 407)" in err.value.message and "USER:PASSWORD@" in err.value.fix
        monkeypatch.setenv("https_proxy", p.url.replace("http://", "http://u:pw@"))
        net.probe(f"https://{HIDDEN}/")
        assert p.auth == [None, "Basic dTpwdw=="]
    finally:
        p.close()


def test_an_http_url_is_probed_with_a_request_through_http_proxy(monkeypatch):
    srv = FlakyServer(PAYLOAD, ["ok"])
    p = HttpProxy(routes={(HIDDEN, 80): ("127.0.0.1", int(srv.url.split(":")[2].split("/")[0]))})
    try:
        monkeypatch.setenv("http_proxy", p.url)
        net.probe(f"http://{HIDDEN}/model.gguf")
        assert p.seen == [f"HEAD http://{HIDDEN}/model.gguf HTTP/1.1"]
    finally:
        p.close()
        srv.close()


class _Needs(Step):
    name = "llama-source"

    def __init__(self, url):
        self.url = url

    def urls(self, ctx):
        return [(self.url, "the sdist")]


def test_preflight_passes_behind_the_proxy_the_user_set(proxy, monkeypatch):
    monkeypatch.setenv("https_proxy", proxy.url)
    (check,) = preflight.check_network(None, [_Needs(f"https://{HIDDEN}/simple/")])
    assert check.level == "ok", check
    monkeypatch.delenv("https_proxy")
    (check,) = preflight.check_network(None, [_Needs(f"https://{HIDDEN}/simple/")])
    assert check.level == "refuse"
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    (check,) = preflight.check_network(None, [_Needs(f"https://{HIDDEN}/simple/")])
    assert check.level == "refuse" and "the proxy 127.0.0.1:9 (https_proxy) is unreachable" in check.detail
    assert check.fix.startswith("check the proxy that https_proxy/http_proxy names")


def test_the_download_and_its_probe_take_the_same_route(monkeypatch, tmp_path):
    srv = FlakyServer(PAYLOAD, ["ok"])
    p = HttpProxy(routes={(HIDDEN, 80): ("127.0.0.1", int(srv.url.split(":")[2].split("/")[0]))})
    try:
        monkeypatch.setenv("http_proxy", p.url)
        lines: list[str] = []
        net.download(f"http://{HIDDEN}/model.gguf", tmp_path / "m.gguf", log=lines.append)
        assert (tmp_path / "m.gguf").read_bytes() == PAYLOAD
        assert p.seen == [f"GET http://{HIDDEN}/model.gguf HTTP/1.1"]
        assert f"through the proxy {p.url}" in lines[0]
    finally:
        p.close()
        srv.close()


def percentages(tmp_path, monkeypatch) -> tuple[list[int], list[str]]:
    """Download the payload from a local server in 64 KiB blocks (16: each tenth is crossed on its
    own); the percentages of the progress lines, and every line logged."""
    monkeypatch.setattr(net, "CHUNK", 64 << 10)
    srv = FlakyServer(PAYLOAD, ["ok"])
    try:
        lines: list[str] = []
        net.download(srv.url, tmp_path / "m.gguf", log=lines.append)
    finally:
        srv.close()
    return [int(m.group(1)) for line in lines if (m := re.match(r"  model.gguf: (\d+)% \(", line))], lines


def test_a_download_logs_a_line_each_tenth_when_not_on_a_terminal(monkeypatch, tmp_path):
    shown, lines = percentages(tmp_path, monkeypatch)
    # one line as each tenth is passed (a block is 6.25%: never two tenths at once), the last at 100%
    assert [pct // 10 for pct in shown] == list(range(1, 11)) and shown[-1] == 100
    assert "1.0 of 1.0 MiB" in lines[-1]


def test_a_resumed_download_counts_from_where_it_resumes(monkeypatch, tmp_path):
    (tmp_path / "m.gguf.part").write_bytes(PAYLOAD[: len(PAYLOAD) // 2 + 1000])
    shown, _ = percentages(tmp_path, monkeypatch)
    assert [pct // 10 for pct in shown] == [6, 7, 8, 9, 10]


def test_on_a_terminal_a_bar_is_redrawn_in_place():
    out = io.StringIO()
    bar = progress.Progress("model.gguf", 100 << 20, log=pytest.fail, tty=True, out=out)
    for mib in range(1, 101):
        bar.update(mib << 20)
    bar.close()
    frames = out.getvalue().split("\r")[1:]
    assert len(frames) == 100 and frames[-1].startswith("  model.gguf [" + "#" * progress.BAR + "] 100%")
    assert out.getvalue().endswith("\n") and "\n" not in "".join(frames[:-1])
