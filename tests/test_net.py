"""The downloader against a real local HTTP server: a host that does not answer fails at once
(Unreachable, the only fallback trigger); transient failures retry and resume; a body cut
short or a length that does not match is never accepted."""

import hashlib
import json

import pytest
from flaky_server import FlakyServer

from orchestrator import net
from orchestrator.errors import UserError

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()
REFUSED = "http://127.0.0.1:9/x.bin"  # the discard port: nothing listens, refused at once


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    # The read timeout stays net's own (30 s) but in the stall test: a short one elsewhere turns a
    # loaded machine's pause into a retry the tests' exact request lists do not expect.
    monkeypatch.setattr(net, "BACKOFF_S", 0.01)


@pytest.fixture
def serve():
    servers = []

    def start(plan, payload=PAYLOAD):
        servers.append(FlakyServer(payload, plan))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def fetch(url, dest, lines=None, **kw):
    return net.download(url, dest, log=(lines.append if lines is not None else lambda s: None), **kw)


def test_unreachable_host_fails_at_once_without_retrying(tmp_path, monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(net.time, "sleep", waits.append)  # a retry would wait its backoff first
    with pytest.raises(net.Unreachable, match="127.0.0.1:9 does not answer"):
        net.download(REFUSED, tmp_path / "x.bin", sha256=DIGEST, log=lambda s: None)
    assert waits == []
    assert not (tmp_path / "x.bin").exists()


def test_unknown_host_is_unreachable(tmp_path):
    with pytest.raises(net.Unreachable):
        net.download("http://no-such-host.invalid/x.bin", tmp_path / "x.bin", log=lambda s: None)


def test_download_resumes_a_partial_file(serve, tmp_path):
    srv = serve(["ok"])
    dest = tmp_path / "file.bin"
    (tmp_path / "file.bin.part").write_bytes(PAYLOAD[:1000])
    fetch(srv.url, dest, sha256=DIGEST)
    assert dest.read_bytes() == PAYLOAD
    assert srv.seen == ["bytes=1000-"]
    # a finished file with the right digest is not fetched again
    fetch(srv.url, dest, sha256=DIGEST)
    assert len(srv.seen) == 1


def test_body_dropped_mid_way_is_resumed_with_range(serve, tmp_path):
    srv = serve(["drop", "ok"])
    lines = []
    fetch(srv.url, tmp_path / "f.bin", lines, sha256=DIGEST, size=len(PAYLOAD))
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD
    assert srv.seen == [None, f"bytes={len(PAYLOAD) // 2}-"]
    assert any("closed after 524288 of 1048576 bytes; try 2 of 5" in line for line in lines)
    assert not (tmp_path / "f.bin.part").exists()


def test_body_dropped_then_server_without_range_restarts_from_zero(serve, tmp_path):
    srv = serve(["drop", "no-range"])
    fetch(srv.url, tmp_path / "f.bin", sha256=DIGEST)
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD  # not the first half twice
    assert srv.seen == [None, f"bytes={len(PAYLOAD) // 2}-"]


def test_read_timeout_mid_body_retries_and_resumes(serve, tmp_path, monkeypatch):
    monkeypatch.setattr(net, "READ_TIMEOUT_S", 0.5)  # shorter than the server's stall
    srv = serve(["stall", "ok"])
    fetch(srv.url, tmp_path / "f.bin", sha256=DIGEST)
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD
    assert srv.seen[1] == f"bytes={len(PAYLOAD) // 2}-"


def test_503_three_times_then_200_downloads_the_file(serve, tmp_path):
    srv = serve([503, 503, 503, "ok"])
    lines = []
    fetch(srv.url, tmp_path / "f.bin", lines, sha256=DIGEST)
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD
    assert len(srv.seen) == 4
    assert sum("HTTP 503" in line for line in lines) == 3


def test_429_is_transient_too(serve, tmp_path):
    srv = serve([429, "ok"])
    fetch(srv.url, tmp_path / "f.bin", sha256=DIGEST)
    assert len(srv.seen) == 2


def test_retries_exhausted_is_a_user_error_naming_url_and_count_not_unreachable(serve, tmp_path):
    srv = serve([503])
    with pytest.raises(UserError) as err:
        fetch(srv.url, tmp_path / "f.bin", tries=3)
    msg = err.value.format_message()
    assert srv.url in msg and "failed 3 times" in msg and "HTTP 503" in msg
    assert "fix: rerun" in msg
    assert len(srv.seen) == 3
    assert not (tmp_path / "f.bin").exists()


def test_content_length_longer_than_the_body_is_never_accepted(serve, tmp_path):
    srv = serve(["lie"])
    lines = []
    with pytest.raises(UserError, match=r"failed 3 times.*the connection closed after"):
        fetch(srv.url, tmp_path / "f.bin", lines, tries=3)
    assert any("closed after 1048576 of 1048676 bytes" in line for line in lines)
    assert not (tmp_path / "f.bin").exists()


def test_content_length_other_than_the_pinned_size_is_refused_at_once(serve, tmp_path):
    srv = serve(["ok"])
    with pytest.raises(UserError, match="announces 1048576 bytes, but the pinned file has 1048577"):
        fetch(srv.url, tmp_path / "f.bin", size=len(PAYLOAD) + 1)
    assert len(srv.seen) == 1
    assert not (tmp_path / "f.bin").exists() and not (tmp_path / "f.bin.part").exists()


def test_wrong_digest_is_refused_and_nothing_is_kept(serve, tmp_path):
    srv = serve(["ok"])
    with pytest.raises(UserError, match="not the pinned"):
        fetch(srv.url, tmp_path / "f.bin", sha256="0" * 64)
    assert not (tmp_path / "f.bin").exists() and not (tmp_path / "f.bin.part").exists()


def test_not_found_is_a_user_error_at_once_not_a_fallback(serve, tmp_path):
    srv = serve([404])
    with pytest.raises(UserError, match="answered HTTP 404"):
        fetch(srv.url, tmp_path / "f.bin")
    assert len(srv.seen) == 1


def test_host_that_answered_then_went_away_is_not_unreachable(serve, tmp_path):
    srv = serve(["drop"])
    lines = []

    def log(line):
        lines.append(line)
        if len(lines) == 2:  # after the first retry: the server is gone, its port refuses
            srv.close()

    with pytest.raises(UserError, match="failed 3 times.*cannot connect again"):
        net.download(srv.url, tmp_path / "f.bin", log=log, tries=3)
    assert (tmp_path / "f.bin.part").stat().st_size == len(PAYLOAD) // 2  # kept, to resume later


def test_pypi_index_is_read_with_retries(serve, tmp_path, monkeypatch):
    index = {"files": [{"filename": "pkg-1.0.tar.gz", "url": "../../files/pkg-1.0.tar.gz",
                        "hashes": {"sha256": "ab" * 32}}]}
    srv = serve([503, "ok"], payload=json.dumps(index).encode())
    monkeypatch.setenv("EDGEBENCH_PYPI_INDEX", srv.url.rsplit("/", 1)[0] + "/simple")
    url, digest = net.pypi_sdist_url("pkg", "pkg-1.0.tar.gz", log=lambda s: None)
    assert url.endswith("/files/pkg-1.0.tar.gz") and digest == "ab" * 32
    assert len(srv.seen) == 2
