"""Fetch the official dataset files into build/datasets/<name>/, once. Offline, fail fast and
name --from DIR. EDGEBENCH_DATASET_BASE_URL replaces every source with BASE/<name>/<file>
(a mirror; the tests' local server)."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from orchestrator import fsutil, paths
from orchestrator.errors import UserError

from .datasets import Dataset

CONNECT_TIMEOUT_S = 5
FIX_OFFLINE = (
    "on a machine without internet, copy the files there and pass --from DIR "
    "(folders wikiqa/, squad_v2/, friends/, multiwoz_2.2/, quac/; see workloads/README.md)"
)


def cache_root() -> Path:
    return paths.build_dir() / "datasets"


def source_urls(ds: Dataset) -> list[str]:
    base = os.environ.get("EDGEBENCH_DATASET_BASE_URL")
    if base:
        return [f"{base.rstrip('/')}/{ds.name}/{url.rsplit('/', 1)[1]}" for url in ds.urls]
    return list(ds.urls)


def ensure_dataset(ds: Dataset) -> Path:
    """The dataset's folder in the cache, downloading what is missing."""
    folder = cache_root() / ds.name
    folder.mkdir(parents=True, exist_ok=True)
    for url in source_urls(ds):
        target = folder / url.rsplit("/", 1)[1]
        if not target.exists():
            _download(url, target, ds)
        if target.suffix == ".zip":
            _unpack(target, folder, ds)
    return folder


def _download(url: str, target: Path, ds: Dataset) -> None:
    part = target.with_name(target.name + ".part")
    try:
        with (
            urllib.request.urlopen(url, timeout=CONNECT_TIMEOUT_S) as resp,
            open(part, "wb") as out,
        ):
            while chunk := resp.read(1 << 20):
                out.write(chunk)
    except (urllib.error.URLError, OSError) as exc:
        part.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise UserError(
            f"cannot download {ds.name} ({ds.licence}) from {url}: {reason}", fix=FIX_OFFLINE
        ) from None
    fsutil.replace_file(part, target)


def _unpack(archive: Path, folder: Path, ds: Dataset) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                name = member.rsplit("/", 1)[-1]
                if name in ds.unpack and not (folder / name).exists():
                    fsutil.atomic_write(folder / name, zf.read(member))
    except zipfile.BadZipFile:
        archive.unlink()
        raise UserError(
            f"{archive} is not a zip archive (a broken download?); it has been removed",
            fix="run the same command again to download it again",
        ) from None
