"""Read what a GGUF says about itself: architecture figures, quantisation, vocabulary size,
and whether edgebench synthesised it as a timing twin."""

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

# ggml type id -> (elements per block, bytes per block), the types of llama.cpp a33e6a0 (ggml.c
# type_traits) whose sizes are certain; a tensor of another type skips the length check.
BLOCK_SIZES = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
               9: (32, 40), 10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210),
               15: (256, 292)}
GGUF_DEFAULT_ALIGNMENT = 32


def data_end(meta: dict, tensors: list[dict]) -> int | None:
    """The byte offset where the last tensor's data ends, or None when a tensor's type is not
    one whose size is known here."""
    align = meta.get("general.alignment") or GGUF_DEFAULT_ALIGNMENT
    start = -(-meta["GGUF.header_bytes"] // align) * align
    end = meta["GGUF.header_bytes"]  # no tensors (a vocabulary-only file): no data, no padding
    for t in tensors:
        if t["type"] not in BLOCK_SIZES:
            return None
        per_block, block_bytes = BLOCK_SIZES[t["type"]]
        end = max(end, start + t["offset"] + math.prod(t["shape"]) // per_block * block_bytes)
    return end


def is_gguf(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"GGUF"
    except OSError:
        return False


def read_info(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file {path} does not exist", fix="make bootstrap, or --model PATH to a .gguf file")
    if not is_gguf(path):
        raise UserError(
            f"{path} is not a GGUF model (its first bytes are not 'GGUF')",
            fix="--model PATH to a llama.cpp .gguf file (convert others with llama.cpp's convert.py)",
        )
    from orchestrator.gguf_meta import GGUFError, read_header

    try:
        meta, tensors = read_header(path)
    except (GGUFError, OSError, struct.error) as exc:
        raise UserError(f"{path} is not a readable GGUF file: {exc}", fix="download or build the model again") from exc

    # A file cut short (an interrupted copy) has a whole header but not all its weights: `main`
    # maps it and dies with SIGSEGV on every query, so it is refused here, before any query.
    end = data_end(meta, tensors)
    size = path.stat().st_size
    if end is not None and size < end:
        raise UserError(
            f"{path} is cut short: its tensors need {end} bytes, the file has {size} ({end - size} bytes missing; "
            "an interrupted download or copy?)",
            fix="copy or download the model again (edgebench bootstrap --force model), or --model PATH",
        )

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
