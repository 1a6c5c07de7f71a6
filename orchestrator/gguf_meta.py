"""A stdlib reader for a GGUF file's header: key/value metadata and tensor infos.

The measuring process needs the vocabulary (to attribute streamed bytes to tokens) and the
architecture figures (for the manifest); reading them here keeps numpy out of that process."""

from __future__ import annotations

import struct
from pathlib import Path

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
STRING, ARRAY = 8, 9


class GGUFError(ValueError):
    pass


class _Reader:
    def __init__(self, f):
        self.f = f

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        data = self.f.read(size)
        if len(data) != size:
            raise GGUFError("file ends inside its header")
        return struct.unpack(fmt, data)[0]

    def string(self) -> str:
        n = self.take("<Q")
        data = self.f.read(n)
        if len(data) != n:
            raise GGUFError("file ends inside a string")
        return data.decode("utf-8", "replace")

    def value(self, vtype: int):
        if vtype == STRING:
            return self.string()
        if vtype == ARRAY:
            sub, n = self.take("<I"), self.take("<Q")
            if sub in _SCALARS:
                fmt = _SCALARS[sub]
                size = struct.calcsize(fmt)
                data = self.f.read(size * n)
                if len(data) != size * n:
                    raise GGUFError("file ends inside an array")
                return list(struct.unpack(f"<{n}{fmt[1]}", data))
            return [self.value(sub) for _ in range(n)]
        if vtype not in _SCALARS:
            raise GGUFError(f"unknown GGUF value type {vtype}")
        return self.take(_SCALARS[vtype])


def read_header(path: Path, tensors: bool = True) -> tuple[dict, list[dict]]:
    """(metadata, tensor infos). Raises GGUFError on anything that is not a whole GGUF header."""
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise GGUFError("not a GGUF file")
        r = _Reader(f)
        version = r.take("<I")
        if version < 2:
            raise GGUFError(f"GGUF version {version} is too old")
        n_tensors, n_kv = r.take("<Q"), r.take("<Q")
        meta = {"GGUF.version": version}
        for _ in range(n_kv):
            key = r.string()
            meta[key] = r.value(r.take("<I"))
        infos = []
        if tensors:
            for _ in range(n_tensors):
                name = r.string()
                dims = [r.take("<Q") for _ in range(r.take("<I"))]
                infos.append({"name": name, "shape": dims, "type": r.take("<I"), "offset": r.take("<Q")})
            meta["GGUF.header_bytes"] = f.tell()  # where the (aligned) tensor data starts
        return meta, infos


# llama.cpp token types (llama.h, a33e6a0)
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


def token_pieces(meta: dict) -> list[bytes]:
    """The bytes `main` prints for each token id: llama_token_to_piece of a33e6a0 for an SPM
    vocabulary (▁ becomes a space, <0xNN> a raw byte, control and unused tokens nothing)."""
    tokens = meta.get("tokenizer.ggml.tokens") or []
    types = meta.get("tokenizer.ggml.token_type") or [NORMAL] * len(tokens)
    if meta.get("tokenizer.ggml.model", "llama") != "llama":
        raise GGUFError(f"vocabulary type {meta.get('tokenizer.ggml.model')!r} is not SentencePiece (llama)")
    out = []
    for text, ttype in zip(tokens, types, strict=True):
        if ttype == NORMAL:
            out.append(text.replace("\u2581", " ").encode("utf-8"))
        elif ttype == USER_DEFINED:
            out.append(text.encode("utf-8"))
        elif ttype == UNKNOWN:
            out.append(b"\xe2\x96\x85")
        elif ttype == BYTE:
            out.append(bytes([int(text[3:5], 16)]))
        else:
            out.append(b"")
    return out
