"""Files that a crash or a hostile archive cannot leave half-made: atomic writes, and the one
tar extractor.

Every writer here uses a plain open (not mkstemp), so files get the user's umask, not 0600."""

from __future__ import annotations

import errno
import os
import tarfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: Path, data: bytes) -> None:
    """Temp file in the same folder, fsync, rename, fsync the folder: a reader sees the old
    file or the new one, and after a power cut the new one is there."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def replace_file(part: Path, dest: Path) -> None:
    """atomic_write for a file too big to hold in memory, already written in full to `part`
    (a download, quantize's output) in the same folder as `dest`."""
    fd = os.open(part, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(part, dest)
    fsync_dir(Path(dest).parent)


def fsync_dir(path: Path) -> None:
    """Makes a created or renamed entry survive a power cut, not only its contents."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno != errno.EINVAL:  # some network and FUSE filesystems cannot sync a folder
            raise
    finally:
        os.close(fd)


def extract_tar(archive: Path, dest: Path, members: Callable[[str], bool] | None = None, strip: int = 0) -> int:
    """Extract the members whose name `members` accepts (all when None) into `dest`, dropping
    `strip` leading path parts. A member that would land outside `dest` (absolute, `..`, a link
    pointing out) raises tarfile.TarError before anything of it is written. Returns the count."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:*") as tar:
        picked = []
        for m in tar.getmembers():
            if members is not None and not members(m.name):
                continue
            if Path(m.name).is_absolute() or ".." in Path(m.name).parts:  # before `strip` can hide it
                raise tarfile.TarError(f"{m.name} in {archive} would land outside {dest}")
            parts = Path(m.name).parts[strip:]
            if not parts:
                continue  # the stripped folder itself
            m.name = str(Path(*parts))
            if m.islnk():  # a hard link names another member, so it loses the same parts
                m.linkname = str(Path(*Path(m.linkname).parts[strip:]))
            picked.append(m)
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, members=picked, filter="data")
            return len(picked)
        # Python < 3.10.12 has no extraction filters: check the paths ourselves.
        root = dest.resolve()
        for m in picked:
            target = (root / m.name).resolve()
            link = root
            if m.issym():
                link = (target.parent / m.linkname).resolve()
            elif m.islnk():
                link = (root / m.linkname).resolve()
            if not (target.is_relative_to(root) and link.is_relative_to(root)) or m.isdev():
                raise tarfile.TarError(f"{m.name} would land outside {dest}")
        tar.extractall(dest, members=picked)  # noqa: S202 (checked above)
        return len(picked)


def read_tar_member(archive: Path, name: str) -> bytes:
    """One member's bytes, never written to disk under its archive path."""
    with tarfile.open(archive, "r:*") as tar:
        fh = tar.extractfile(name)
        if fh is None:
            raise tarfile.TarError(f"{name} in {archive} is not a regular file")
        return fh.read()
