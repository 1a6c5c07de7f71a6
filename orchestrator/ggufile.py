"""Everything edgebench reads from a GGUF file, with the standard library only.

The measuring process needs the vocabulary (engine/vocab.py), the architecture figures (for the
manifest) and whether the tensor data is all there; reading them here keeps numpy (the `gguf`
package) out of that process."""

from __future__ import annotations

import math
import struct
from pathlib import Path

from orchestrator.errors import UserError

SYNTHETIC_KEY = "edgebench.synthetic"
TWIN_OF_KEY = "edgebench.twin_of"

# llama_ftype values of llama.cpp a33e6a0 (llama.h), the ones a user is likely to meet.
FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
              11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
              17: "Q5_K_M", 18: "Q6_K"}

_QK_K = 256
# ggml_type -> (elements per block, bytes per block): type_traits of ggml.c at a33e6a0, from the
# block structs' static_asserts in ggml-quants.h. BF16 (30) came later; a33e6a0 refuses it itself.
# I8/I16/I32 are left out: later ggml renumbered them (23 became IQ4_XS), and weights never use them.
TYPE_SIZES = {
    0: (1, 4), 1: (1, 2),                                   # F32, F16
    2: (32, 2 + 16), 3: (32, 2 + 2 + 16),                   # Q4_0, Q4_1
    6: (32, 2 + 4 + 16), 7: (32, 2 + 2 + 4 + 16),           # Q5_0, Q5_1
    8: (32, 2 + 32), 9: (32, 4 + 4 + 32),                   # Q8_0, Q8_1
    10: (_QK_K, 2 + 2 + _QK_K // 16 + _QK_K // 4),          # Q2_K
    11: (_QK_K, 2 + _QK_K // 4 + _QK_K // 8 + 12),          # Q3_K
    12: (_QK_K, 2 + 2 + _QK_K // 2 + 12),                   # Q4_K
    13: (_QK_K, 2 + 2 + _QK_K // 2 + _QK_K // 8 + 12),      # Q5_K
    14: (_QK_K, 2 + _QK_K // 2 + _QK_K // 4 + _QK_K // 16),  # Q6_K
    15: (_QK_K, 4 + _QK_K + _QK_K // 16 * 2),               # Q8_K
    16: (_QK_K, 2 + _QK_K // 4),                            # IQ2_XXS
    17: (_QK_K, 2 + _QK_K // 4 + _QK_K // 32),              # IQ2_XS
    18: (_QK_K, 2 + 3 * (_QK_K // 8)),                      # IQ3_XXS
    19: (_QK_K, 2 + _QK_K // 8 + _QK_K // 16),              # IQ1_S
    20: (32, 2 + 16),                                       # IQ4_NL
    21: (_QK_K, 2 + 13 * (_QK_K // 32) + _QK_K // 64),      # IQ3_S
    22: (_QK_K, 2 + _QK_K // 4 + _QK_K // 16),              # IQ2_S
    30: (1, 2),                                             # BF16
}
DEFAULT_ALIGNMENT = 32  # GGUF_DEFAULT_ALIGNMENT

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


def is_gguf(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"GGUF"
    except OSError:
        return False


def _parse(path: Path, tensors: bool) -> tuple[dict, list[dict], int]:
    """(metadata, tensor infos, byte offset where the header ends)."""
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
        return meta, infos, f.tell()


def read_header(path: Path, tensors: bool = True) -> tuple[dict, list[dict]]:
    """(metadata, tensor infos). Raises GGUFError on anything that is not a whole GGUF header."""
    meta, infos, _ = _parse(path, tensors)
    return meta, infos


def tensor_bytes(info: dict) -> int | None:
    """ggml_nbytes of a contiguous tensor; None for a ggml type this table does not know."""
    if info["type"] not in TYPE_SIZES:
        return None
    block, size = TYPE_SIZES[info["type"]]
    return math.prod(info["shape"]) // block * size


def data_end(meta: dict, infos: list[dict], header_end: int) -> int | None:
    """The file size the tensors need: gguf.c pads the header to the alignment, and each tensor's
    offset counts from there. None when a tensor's type is unknown (then nothing can be said)."""
    align = meta.get("general.alignment", DEFAULT_ALIGNMENT) or DEFAULT_ALIGNMENT
    start = -(-header_end // align) * align
    end = start
    for t in infos:
        n = tensor_bytes(t)
        if n is None:
            return None
        end = max(end, start + t["offset"] + n)
    return end


def _check_size(path: Path, end: int | None) -> None:
    # `main` maps the file and reads past its end otherwise: SIGSEGV/SIGBUS on every query.
    size = path.stat().st_size
    if end is not None and size < end:
        raise UserError(
            f"{path} is cut short: its tensor data ends at byte {end} but the file has {size} bytes "
            f"({end - size} bytes missing); download or copy it again",
            fix=f"rm {path}; make bootstrap (or copy the model again)",
        )


def _parse_model(path: Path) -> tuple[dict, list[dict], int]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file {path} does not exist", fix="make bootstrap, or --model PATH to a .gguf file")
    if not is_gguf(path):
        raise UserError(
            f"{path} is not a GGUF model (its first bytes are not 'GGUF')",
            fix="--model PATH to a llama.cpp .gguf file (convert others with llama.cpp's convert.py)",
        )
    try:
        return _parse(path, tensors=True)
    except (GGUFError, OSError, struct.error) as exc:
        raise UserError(f"{path} is not a readable GGUF file: {exc}", fix="download or build the model again") from exc


def read_info(path: Path) -> dict:
    """The manifest's model figures. Refuses a missing, foreign or cut-short file."""
    path = Path(path)
    meta, tensors, header_end = _parse_model(path)
    _check_size(path, data_end(meta, tensors, header_end))

    def get(key, default=None):
        return meta.get(key, default)

    arch = get("general.architecture")
    ftype = get("general.file_type")
    tokens = meta.get("tokenizer.ggml.tokens")
    return {
        "path": str(path),
        "size_bytes": path.stat().st_size,
        "name": get("general.name"),
        "architecture": arch,
        "block_count": get(f"{arch}.block_count"),
        "embedding_length": get(f"{arch}.embedding_length"),
        "feed_forward_length": get(f"{arch}.feed_forward_length"),
        "head_count": get(f"{arch}.attention.head_count"),
        "head_count_kv": get(f"{arch}.attention.head_count_kv"),
        "context_length": get(f"{arch}.context_length"),
        "file_type": ftype,
        "file_type_name": FILE_TYPES.get(ftype, str(ftype)),
        "vocab_size": len(tokens) if tokens is not None else None,
        "tensor_count": len(tensors),
        "parameter_count": sum(math.prod(t["shape"]) for t in tensors),
        "synthetic": bool(get(SYNTHETIC_KEY, False)),
        "twin_of": get(TWIN_OF_KEY),
    }

