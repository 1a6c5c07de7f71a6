"""Downloads that fail fast and say so: a reachability probe before any transfer, resumable
transfers into the per-user cache, and SHA-256 checks where the digest is known."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from orchestrator import fsutil
from orchestrator.errors import UserError

CONNECT_TIMEOUT_S = float(os.environ.get("EDGEBENCH_CONNECT_TIMEOUT", "5"))
USER_AGENT = "edgebench (+https://pypi.org/project/edgebench)"


class Unreachable(Exception):
    """The host of a URL does not answer; callers turn this into a fallback or a UserError."""


def probe(url: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Open (and close) a TCP connection to the URL's host. Raises Unreachable within `timeout`.

    A failed DNS lookup or a refused connection returns at once; a black-holed route costs
    `timeout` seconds, never the minutes a stalled transfer would."""
    parts = urlparse(url)
    if parts.scheme in ("", "file"):
        return
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme in ("https", "git") else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise Unreachable(f"{host}:{port} is unreachable ({exc.strerror or exc})") from exc


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                return h.hexdigest()
            h.update(block)


def download(url: str, dest: Path, sha256: str | None = None, log=print) -> Path:
    """Fetch `url` into `dest` (resuming a `.part` left by an interrupted try).

    Raises Unreachable when the host does not answer; UserError when the content is not
    what was pinned. A finished `dest` whose digest matches is returned without a transfer."""
    dest = Path(dest)
    if dest.exists() and (sha256 is None or sha256_file(dest) == sha256):
        return dest
    probe(url)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=max(CONNECT_TIMEOUT_S, 30))
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the .part is already whole
            resp = None
        else:
            raise Unreachable(f"{url} answered HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise Unreachable(f"{url}: {getattr(exc, 'reason', exc)}") from exc
    if resp is not None:
        with resp:
            mode = "ab" if have and resp.status == 206 else "wb"
            total = resp.headers.get("Content-Length")
            log(f"  downloading {url} ({_mib(total)}{', resuming' if mode == 'ab' else ''})")
            with open(part, mode) as f:
                while True:
                    block = resp.read(1 << 20)
                    if not block:
                        break
                    f.write(block)
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


def _mib(n) -> str:
    return f"{int(n) / 2**20:.1f} MiB" if n else "size unknown"


def pypi_index() -> str:
    """The package index: EDGEBENCH_PYPI_INDEX, else pip's PIP_INDEX_URL, else pypi.org."""
    return os.environ.get("EDGEBENCH_PYPI_INDEX") or os.environ.get("PIP_INDEX_URL") or "https://pypi.org/simple"


def pypi_sdist_url(project: str, filename: str) -> tuple[str, str]:
    """Resolve an sdist's URL and SHA-256 through the PyPI simple API (PEP 691), honouring
    PIP_INDEX_URL so a mirror works the same as pypi.org."""
    url = f"{pypi_index().rstrip('/')}/{project}/"
    probe(url)
    req = urllib.request.Request(
        url, headers={"Accept": "application/vnd.pypi.simple.v1+json", "User-Agent": USER_AGENT}
    )
    try:
        with urllib.request.urlopen(req, timeout=max(CONNECT_TIMEOUT_S, 30)) as resp:
            data = json.load(resp)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise Unreachable(f"{url}: {getattr(exc, 'reason', exc)}") from exc
    for f in data.get("files", []):
        if f.get("filename") == filename:
            from urllib.parse import urljoin

            return urljoin(url, f["url"]), f.get("hashes", {}).get("sha256", "")
    raise Unreachable(f"{url} does not list {filename}")
