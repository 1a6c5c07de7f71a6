import io
import os
import stat
import tarfile

import pytest

from orchestrator.fsutil import atomic_write, extract_tar, read_tar_member, replace_file, replacing


def _tar(path, entries):
    """entries: (name, bytes) for files, (name, '->target') for symlinks."""
    with tarfile.open(path, "w:gz") as tar:
        for name, body in entries:
            info = tarfile.TarInfo(name)
            if isinstance(body, str):
                info.type, info.linkname = tarfile.SYMTYPE, body[2:]
                tar.addfile(info)
            else:
                info.size = len(body)
                tar.addfile(info, io.BytesIO(body))
    return path


def test_atomic_write_replaces_whole_with_the_users_umask(tmp_path):
    target = tmp_path / "ledger.json"
    old = os.umask(0o027)
    try:
        atomic_write(target, b"one")
        atomic_write(target, b"two")
    finally:
        os.umask(old)
    assert target.read_bytes() == b"two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["ledger.json"]  # no temp file left behind


def test_a_failed_atomic_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "manifest.json"
    atomic_write(target, b"old")
    with pytest.raises(TypeError):
        atomic_write(target, "not bytes")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_a_writer_that_wants_a_path_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "queries.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError, match="disk full"), replacing(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old\n"
    with replacing(target) as tmp:
        tmp.write_text("new\n")
        assert target.read_text() == "old\n"  # readers see the old file until the new one is whole
    assert target.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["queries.csv"]


def test_replace_file_moves_a_finished_part_into_place(tmp_path):
    part, dest = tmp_path / "model.gguf.part", tmp_path / "model.gguf"
    part.write_bytes(b"GGUF")
    replace_file(part, dest)
    assert dest.read_bytes() == b"GGUF" and not part.exists()


def test_extract_tar_strips_and_selects(tmp_path):
    archive = _tar(tmp_path / "sdist.tar.gz", [
        ("pkg-1.0/setup.py", b"setup"),
        ("pkg-1.0/vendor/llama.cpp/Makefile", b"all:"),
        ("pkg-1.0/vendor/llama.cpp/ggml.c", b"int x;"),
    ])
    dest = tmp_path / "out"
    prefix = "pkg-1.0/vendor/llama.cpp/"
    n = extract_tar(archive, dest, members=lambda name: name.startswith(prefix), strip=3)
    assert n == 2
    assert sorted(p.name for p in dest.iterdir()) == ["Makefile", "ggml.c"]
    assert (dest / "ggml.c").read_bytes() == b"int x;"


@pytest.mark.parametrize("entry", [
    ("gcc-8.5.0/../../escaped", b"x"),
    ("/tmp/absolute-escape", b"x"),
    ("gcc-8.5.0/link", "->/etc/passwd"),
    ("gcc-8.5.0/link", "->../../outside"),
])
def test_extract_tar_refuses_members_that_land_outside(tmp_path, entry):
    archive = _tar(tmp_path / "evil.tar.gz", [("gcc-8.5.0/ok", b"ok"), entry])
    dest = tmp_path / "a" / "b" / "out"
    with pytest.raises(tarfile.TarError):
        extract_tar(archive, dest, strip=1)
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "a" / "escaped").exists()
    assert not (dest / "link").exists()


def test_read_tar_member_gives_one_members_bytes(tmp_path):
    archive = _tar(tmp_path / "vocab.tar.gz", [("pkg/models/ggml-vocab-llama.gguf", b"GGUF...")])
    assert read_tar_member(archive, "pkg/models/ggml-vocab-llama.gguf") == b"GGUF..."
    with pytest.raises(KeyError):
        read_tar_member(archive, "pkg/missing")
