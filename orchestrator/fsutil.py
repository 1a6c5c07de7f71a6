"""Files that a crash or a hostile archive cannot leave half-made: atomic writes, and the one
tar extractor.

Every writer here uses a plain open (not mkstemp), so files get the user's umask, not 0600."""

from __future__ import annotations

import contextlib
import errno
import os
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path


def atomic_write(path: Path, data: bytes) -> None:
    """Temp file in the same folder, fsync, rename, fsync the folder: a reader sees the old
    file or the new one, and after a power cut the new one is there."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"atomic_write takes bytes, not {type(data).__name__}")
    with replacing(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """atomic_write for a writer that wants a file name (polars' write_csv, write_parquet): the
    block writes the yielded temp path in full, which then replaces `path` (fsync'd, renamed, folder
    fsync'd); when the block raises, the temp file goes and `path` is untouched."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        replace_file(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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


class UnsafeMember(tarfile.TarError):
    """A member that would write outside the destination, or is no file, folder or link."""


def extract_tar(archive: Path, dest: Path, members: Callable[[str], bool] | None = None, strip: int = 0) -> int:
    """Extract the members whose name `members` accepts (all when None) into `dest`, dropping
    `strip` leading path parts. Every member is checked by `_plan` before the first byte is
    written (tarfile's own filter is not trusted: the 2025 long-symlink-chain bypass, and a hard
    link to a missing member ends in KeyError). Raises UnsafeMember; returns the count."""
    dest = Path(dest)
    with tarfile.open(archive, "r:*") as tar:
        picked = _plan(tar, archive, members, strip)
        dest.mkdir(parents=True, exist_ok=True)
        root = dest.resolve()
        for m in picked:  # what is on disk already must not redirect a member (dest is not always empty)
            if not Path(os.path.realpath((root / m.name).parent)).is_relative_to(root):
                raise UnsafeMember(f"{m.name} in {archive} would be written through a link out of {dest}")
        kw = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(root, members=picked, **kw)  # noqa: S202 (checked by _plan)
        return len(picked)


def _plan(tar: tarfile.TarFile, archive: Path, members: Callable[[str], bool] | None, strip: int) -> list:
    """The members to extract, renamed by `strip`, each proven to stay inside the destination:
    links are resolved against the links planned before them, as the kernel would after
    extraction, so a chain of links cannot walk out one step at a time."""
    links: dict[tuple[str, ...], tuple[str, ...]] = {}  # a planned symlink: where it points, resolved
    used: set[tuple[str, ...]] = set()  # every path a member or a resolution went through
    files: set[tuple[str, ...]] = set()
    picked = []
    for m in tar.getmembers():
        if members is not None and not members(m.name):
            continue
        where = f"{m.name} in {archive}"
        if not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
            raise UnsafeMember(f"{where} is a device, fifo or other special entry; an archive of files never has one")
        parts = _relative(m.name, where)[strip:]
        if not parts:
            continue  # the stripped folder itself
        if parts in links:
            raise UnsafeMember(f"{where} replaces a link the archive made before it")
        if _resolve(parts[:-1], links, used, where) != parts[:-1]:
            raise UnsafeMember(f"{where} is written through a link; an archive of files never does that")
        m.name = "/".join(parts)
        if m.issym():
            # A link where an earlier entry went through a plain folder would change, after the
            # fact, where that entry's path leads: the resolution below holds only without that.
            if parts in used:
                raise UnsafeMember(f"{where} is a link in place of a folder or link the archive used before")
            if m.linkname.startswith("/"):
                raise UnsafeMember(f"{where} is a link to the absolute path {m.linkname}")
            links[parts] = _resolve(parts[:-1] + tuple(m.linkname.split("/")), links, used, where)
        elif m.islnk():
            target = _relative(m.linkname, where)[strip:]
            if target not in files:
                raise UnsafeMember(f"{where} is a hard link to {m.linkname}, which is no file extracted before it")
            m.linkname = "/".join(target)
        elif m.isfile():
            files.add(parts)
        used.update(parts[:i] for i in range(1, len(parts) + 1))
        picked.append(m)
    return picked


def _relative(name: str, where: str) -> tuple[str, ...]:
    if name.startswith("/"):
        raise UnsafeMember(f"{where} has the absolute path {name}")
    parts = tuple(x for x in name.split("/") if x not in ("", "."))
    if ".." in parts:
        raise UnsafeMember(f"{where} climbs out with '..' ({name})")
    return parts


def _resolve(parts: tuple[str, ...], links: dict, used: set, where: str, hops: int = 0) -> tuple[str, ...]:
    """Where `parts` lands once the planned links are followed; refused when that is outside the
    destination. Each folder passed through is noted in `used` (the last part is no folder: a
    link there may come later, `lib.so -> lib.so.1` before `lib.so.1 -> lib.so.1.2`)."""
    out: tuple[str, ...] = ()
    for i, part in enumerate(parts):
        if part == "..":
            if not out:
                raise UnsafeMember(f"{where} reaches outside the destination through '..' and links")
            out = out[:-1]
        elif part not in ("", "."):
            out += (part,)
            if i < len(parts) - 1:
                used.add(out)
            if out in links:
                if hops >= 40:  # the kernel's own limit on links followed
                    raise UnsafeMember(f"{where} follows a loop or a chain of over 40 links")
                return _resolve(links[out] + parts[i + 1:], links, used, where, hops + 1)
    return out


def read_tar_member(archive: Path, name: str) -> bytes:
    """One member's bytes, never written to disk under its archive path."""
    with tarfile.open(archive, "r:*") as tar:
        fh = tar.extractfile(name)
        if fh is None:
            raise tarfile.TarError(f"{name} in {archive} is not a regular file")
        return fh.read()
