"""The bytes `main` prints for each token id, so that streamed bytes can be attributed to tokens."""

from __future__ import annotations

from orchestrator.ggufile import GGUFError

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
