"""The one downloader for everything edgebench fetches (llama.cpp's sdist, the model, its
vocabulary, GCC, the datasets), built so that a download can never silently degrade:

- a host that does not answer at all (DNS failure, connection refused, connect timeout)
  raises `Unreachable` at once: the only error a caller may turn into a fallback (the timing
  twin, `--from DIR`);
- a transient error (HTTP 5xx or 429, a reset connection, a read timeout, a body cut short)
  is retried with exponential backoff, resuming the `.part` file where the server honours
  Range; when the tries run out it is a `UserError` naming the URL and the count, never a
  fallback, because a flaky link must not turn a real-model run into a twin run unnoticed;
- the bytes received are checked against Content-Length (and against the pinned size and
  SHA-256 where known), so a truncated file never takes the final name.

Proxies: urllib's opener (and so every download) takes the proxy the environment names
(https_proxy, http_proxy, either case, except for the hosts no_proxy lists); `probe` asks the
same proxy, so a reachability check and the download it guards never disagree."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlparse

from orchestrator import fsutil, progress
from orchestrator.errors import UserError

# Connecting and reading get separate limits: a host that does not answer must fail in
# seconds, while a slow board on a slow link may legitimately wait longer for the next block.
CONNECT_TIMEOUT_S = float(os.environ.get("EDGEBENCH_CONNECT_TIMEOUT", "5"))
READ_TIMEOUT_S = float(os.environ.get("EDGEBENCH_READ_TIMEOUT", "30"))
TRIES = int(os.environ.get("EDGEBENCH_DOWNLOAD_TRIES", "5"))
BACKOFF_S = float(os.environ.get("EDGEBENCH_DOWNLOAD_BACKOFF", "1"))
MAX_BACKOFF_S = 60.0
CHUNK = 1 << 20
USER_AGENT = "edgebench (+https://pypi.org/project/edgebench)"
FIX_RETRY = "rerun the same command later: a partial download is kept and resumes where it stopped"


class Unreachable(Exception):
    """The host of a URL does not answer; callers turn this into a fallback or a UserError."""


class _ConnectFailed(OSError):
    """The TCP connection itself failed: the host (or the proxy) did not answer."""


class _Transient(Exception):
    """One try failed in a way the next one may not."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class _HTTPRefusal(Exception):
    """A 4xx answer other than 429: a later try would get the same."""

    def __init__(self, code: int, reason: str, headers):
        super().__init__(f"HTTP {code} {reason}")
        self.code, self.headers = code, headers


@dataclass
class _State:
    answered: bool = False  # some try got an HTTP answer: later connect failures are transient


def _guarded_connect(create):
    def connect(*args, **kwargs):
        try:
            return create(*args, **kwargs)
        except OSError as exc:
            raise _ConnectFailed(exc.errno, exc.strerror or str(exc) or type(exc).__name__) from exc

    return connect


class _HTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = _guarded_connect(self._create_connection)

    def connect(self):
        super().connect()
        self.sock.settimeout(READ_TIMEOUT_S)


class _HTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = _guarded_connect(self._create_connection)

    def connect(self):
        super().connect()  # the TLS handshake runs under the connect timeout
        self.sock.settimeout(READ_TIMEOUT_S)


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_HTTPConnection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        return self.do_open(_HTTPSConnection, req, context=self._context)


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Hugging Face answers with a redirect to its CDN: that answer proves the host is there."""

    def __init__(self, state: _State):
        self.state = state

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        self.state.answered = True
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def proxy_for(url: str) -> str | None:
    """The proxy urllib sends `url` through: the environment's <scheme>_proxy, unless no_proxy
    names the host."""
    parts = urlparse(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxy


def probe(url: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Check within `timeout` that the URL's host answers, the way a download would reach it:
    a TCP connection to it, or through the proxy the environment names (a CONNECT for https,
    a HEAD for http). Raises Unreachable; a proxy that wants credentials is a UserError.

    A failed DNS lookup or a refused connection returns at once; a black-holed route costs
    `timeout` seconds, never the minutes a stalled transfer would."""
    parts = urlparse(url)
    if parts.scheme in ("", "file"):
        return
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme in ("https", "git") else 80)
    proxy = proxy_for(url)
    if proxy is not None:
        return _probe_through(proxy, url, f"{host}:{port}", timeout)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise Unreachable(f"{host}:{port} is unreachable ({exc.strerror or exc})") from exc


def _probe_through(proxy: str, url: str, target: str, timeout: float) -> None:
    p = urlparse(proxy if "://" in proxy else f"http://{proxy}")
    where = f"{p.hostname}:{p.port or (443 if p.scheme == 'https' else 80)}"
    named = f"the proxy {where} ({urlparse(url).scheme}_proxy)"
    headers = f"Host: {target}\r\n"
    if p.username:
        token = base64.b64encode(f"{p.username}:{p.password or ''}".encode()).decode()
        headers += f"Proxy-Authorization: Basic {token}\r\n"
    tunnel = urlparse(url).scheme == "https"
    if tunnel:
        request = f"CONNECT {target} HTTP/1.1\r\n{headers}\r\n"
    else:  # a plain-HTTP proxy fetches for us: any answer but its own gateway errors came from the host
        request = f"HEAD {url} HTTP/1.1\r\n{headers}Connection: close\r\n\r\n"
    try:
        with socket.create_connection((p.hostname, p.port or (443 if p.scheme == "https" else 80)),
                                      timeout=timeout) as raw:
            sock = ssl.create_default_context().wrap_socket(raw, server_hostname=p.hostname) \
                if p.scheme == "https" else raw
            sock.settimeout(timeout)
            sock.sendall(request.encode())
            status = sock.makefile("rb").readline(1024).decode("latin-1").split(None, 2)
    except OSError as exc:
        raise Unreachable(f"{named} is unreachable ({exc.strerror or exc})") from exc
    code = int(status[1]) if len(status) > 1 and status[1].isdigit() else 0
    if code == 407:
        raise UserError(f"{named} asks for credentials (HTTP 407) to reach {target}",
                        fix="put them in the variable: export https_proxy=http://USER:PASSWORD@HOST:PORT")
    if not (200 <= code < 300 if tunnel else code and code not in (502, 503, 504)):
        why = " ".join(status[1:]).strip() or "no HTTP answer"
        raise Unreachable(f"{target} is unreachable through {named}: {why}")


def sha256_file(path: Path, chunk: int = CHUNK) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                return h.hexdigest()
            h.update(block)


def _open(url: str, state: _State, headers: dict[str, str]):
    """One HTTP GET; returns the response or raises _ConnectFailed, _Transient or UserError."""
    opener = urllib.request.build_opener(_HTTPHandler, _HTTPSHandler, _Redirects(state))
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **headers})
    try:
        resp = opener.open(req, timeout=CONNECT_TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        state.answered = True
        exc.close()
        if exc.code == 429 or exc.code >= 500:
            raise _Transient(f"HTTP {exc.code} {exc.reason}", _retry_after(exc.headers)) from None
        raise _HTTPRefusal(exc.code, exc.reason, exc.headers) from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, _ConnectFailed):
            raise reason from None
        if urlparse(url).scheme == "file":  # a local file does not get better by waiting
            raise UserError(f"cannot read {url}: {reason}", fix="check the path") from None
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise UserError(f"{url}: the server's TLS certificate is not trusted ({reason.verify_message})",
                            fix="check the clock (date) and any proxy that intercepts HTTPS") from None
        if isinstance(reason, OSError):
            raise _Transient(f"{type(reason).__name__}: {reason}") from None
        raise UserError(f"cannot fetch {url}: {reason}", fix="check the URL") from None
    except (http.client.HTTPException, OSError) as exc:  # a reset or timeout before the status line
        raise _Transient(f"{type(exc).__name__}: {exc}") from None
    state.answered = True
    return resp


def _retry_after(headers) -> float | None:
    try:
        return float(headers.get("Retry-After"))
    except (TypeError, ValueError):
        return None


def _with_retries(url: str, once, log, tries: int | None):
    """Call `once(state)` until it succeeds, retrying transient failures with backoff."""
    tries = max(1, tries or TRIES)
    state = _State()
    last = ""
    for attempt in range(1, tries + 1):
        retry_after = None
        try:
            return once(state)
        except _ConnectFailed as exc:
            if not state.answered:
                host = urlparse(url).netloc
                raise Unreachable(f"{host} does not answer ({exc.strerror})") from None
            last = f"cannot connect again ({exc.strerror})"
        except _Transient as exc:
            last, retry_after = str(exc), exc.retry_after
        except _HTTPRefusal as exc:
            raise UserError(f"{url} answered {exc}", fix="check the URL (and any EDGEBENCH_*_URL override)") from None
        if attempt < tries:
            delay = min(MAX_BACKOFF_S, retry_after if retry_after is not None else BACKOFF_S * 2 ** (attempt - 1))
            log(f"  {url}: {last}; try {attempt + 1} of {tries} in {delay:.1f} s")
            time.sleep(delay)
    raise UserError(f"downloading {url} failed {tries} times (retried {tries - 1} times); last error: {last}",
                    fix=FIX_RETRY)


def download(url: str, dest: Path, sha256: str | None = None, size: int | None = None, log=print,
             tries: int | None = None) -> Path:
    """Fetch `url` into `dest`, resuming a `.part` left by an interrupted try.

    Raises Unreachable when the host does not answer at all; UserError when the tries run out
    or the content is not what was pinned (`size` bytes, `sha256`). A finished `dest` that
    matches the pins is returned without a transfer."""
    dest = Path(dest)
    if dest.is_file() and (size is None or dest.stat().st_size == size) and (
        sha256 is None or sha256_file(dest) == sha256
    ):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    _with_retries(url, lambda state: _fetch_into(url, part, size, state, log), log, tries)
    got_size = part.stat().st_size
    if size is not None and got_size != size:
        part.unlink()
        raise UserError(f"{url} gave {got_size} bytes, not the pinned {size}", fix=FIX_RETRY)
    if sha256 is not None:
        got = sha256_file(part)
        if got != sha256:
            part.unlink()
            raise UserError(
                f"{url} downloaded, but its SHA-256 is {got}, not the pinned {sha256}",
                fix="retry the command; if it persists, the mirror serves another file",
            )
    fsutil.replace_file(part, dest)
    return dest


def _fetch_into(url: str, part: Path, size: int | None, state: _State, log) -> None:
    """One try: append to `part` (206) or rewrite it (200); raise _Transient when the body
    stops short of its Content-Length, keeping what arrived for the next try to resume."""
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:
        part.unlink()
        have = 0
    try:
        resp = _open(url, state, {"Range": f"bytes={have}-"} if have else {})
    except _HTTPRefusal as exc:
        if exc.code != 416 or not have:
            raise
        # Range not satisfiable: the .part is already whole, or longer than the file now is.
        if _content_range(exc.headers.get("Content-Range"))[2] == have:
            return
        part.unlink()
        raise _Transient("the server cannot resume the partial file (HTTP 416); starting again") from None
    with resp:
        length = _int(resp.headers.get("Content-Length"))
        if resp.status == 206:
            start, _end, total = _content_range(resp.headers.get("Content-Range"))
            if start != have:
                part.unlink()
                raise _Transient(f"the server resumed at byte {start}, not {have}; starting again")
            mode = "ab"
        else:  # 200: the server ignores Range, so the whole file comes again
            mode, have, total = "wb", 0, length
        if size is not None and total is not None and total != size:
            part.unlink(missing_ok=True)
            raise UserError(f"{url} announces {total} bytes, but the pinned file has {size}",
                            fix="check EDGEBENCH_MODEL_URL / the mirror: it serves another file")
        resuming = f", resuming at {have / 2**20:.1f} MiB" if mode == "ab" else ""
        via = f" through the proxy {proxy_for(url)}" if proxy_for(url) else ""
        log(f"  downloading {url}{via} ({_mib(total)}{resuming})")
        got = 0
        shown = progress.Progress(Path(urlparse(url).path).name or url, total, have, log, tty=sys.stderr.isatty())
        with open(part, mode) as f:
            try:
                # read1: what has arrived, so a stall keeps everything before it for the resume
                while block := resp.read1(CHUNK):
                    f.write(block)
                    got += len(block)
                    shown.update(have + got)
            except (http.client.HTTPException, OSError) as exc:  # reset, read timeout, torn chunk
                raise _Transient(f"{type(exc).__name__} after {have + got} bytes: {exc}") from None
            finally:
                shown.close()
        # http.client returns b"" when the peer closes early instead of raising: count instead.
        if length is not None and got != length:
            raise _Transient(f"the connection closed after {got} of {length} bytes")


def _content_range(value: str | None) -> tuple[int | None, int | None, int | None]:
    """'bytes 100-199/1000' -> (100, 199, 1000); 'bytes */1000' -> (None, None, 1000)."""
    try:
        unit, spec = (value or "").split(" ", 1)
        span, total = spec.split("/", 1)
        if span == "*":
            return None, None, _int(total)
        start, end = span.split("-", 1)
        return int(start), int(end), _int(total)
    except ValueError:
        return None, None, None


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _mib(n) -> str:
    return f"{int(n) / 2**20:.1f} MiB" if n else "size unknown"


def read_url(url: str, headers: dict[str, str] | None = None, log=print, tries: int | None = None) -> bytes:
    """A small document (an index page), with the same timeouts, retries and length check."""

    def once(state: _State) -> bytes:
        with _open(url, state, headers or {}) as resp:
            length = _int(resp.headers.get("Content-Length"))
            try:
                body = resp.read()
            except (http.client.HTTPException, OSError) as exc:
                raise _Transient(f"{type(exc).__name__}: {exc}") from None
        if length is not None and len(body) != length:
            raise _Transient(f"the connection closed after {len(body)} of {length} bytes")
        return body

    return _with_retries(url, once, log, tries)


def pypi_index() -> str:
    """The package index: EDGEBENCH_PYPI_INDEX, else pip's PIP_INDEX_URL, else pypi.org."""
    return os.environ.get("EDGEBENCH_PYPI_INDEX") or os.environ.get("PIP_INDEX_URL") or "https://pypi.org/simple"


def pypi_sdist_url(project: str, filename: str, log=print) -> tuple[str, str]:
    """Resolve an sdist's URL and SHA-256 through the PyPI simple API (PEP 691), honouring
    PIP_INDEX_URL so a mirror works the same as pypi.org."""
    url = f"{pypi_index().rstrip('/')}/{project}/"
    body = read_url(url, {"Accept": "application/vnd.pypi.simple.v1+json"}, log=log)
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise UserError(f"{url} did not answer with the PEP 691 JSON index ({exc})",
                        fix="EDGEBENCH_PYPI_INDEX=https://pypi.org/simple (or a mirror that speaks PEP 691)") from None
    for f in data.get("files", []):
        if f.get("filename") == filename:
            return urljoin(url, f["url"]), f.get("hashes", {}).get("sha256", "")
    raise UserError(f"{url} does not list {filename}",
                    fix="EDGEBENCH_PYPI_INDEX=https://pypi.org/simple (the mirror may lack this release)")
