"""Fetch the official dataset files into build/datasets/<name>/, once. Offline, fail fast and
name --from DIR. EDGEBENCH_DATASET_BASE_URL replaces every source with BASE/<name>/<file>
(a mirror; the tests' local server)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import click

from orchestrator import fsutil, net, paths
from orchestrator.errors import UserError

from .datasets import Dataset

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
    """Through the shared downloader: only a host that does not answer at all names --from DIR;
    a flaky one is retried, and when the tries run out the error names the URL and the count."""
    try:
        net.download(url, target, log=lambda line: click.echo(line, err=True))
    except net.Unreachable as exc:
        raise UserError(f"cannot download {ds.name} ({ds.licence}) from {url}: {exc}", fix=FIX_OFFLINE) from None


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
