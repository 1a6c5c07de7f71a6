"""Synthesise a timing twin: a GGUF with TinyLlama-1.1B-Chat's exact shapes and the real
Llama vocabulary, random weights written as F16 and quantised by llama.cpp's own `quantize`.
It does the same arithmetic as the real model, so it times the same; its text is noise."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from orchestrator import fsutil
from orchestrator.bootstrap.steps import Command, sh
from orchestrator.ggufile import SYNTHETIC_KEY, TWIN_OF_KEY


@dataclass(frozen=True)
class TwinSpec:
    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int
    n_ff: int
    n_ctx: int = 2048
    quant: str = "Q5_K_M"
    twin_of: str = "TinyLlama-1.1B-Chat-v1.0 Q5_K_M"

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    def label(self) -> str:
        return f"L{self.n_layer}-E{self.n_embd}-H{self.n_head}-KV{self.n_head_kv}-F{self.n_ff}-{self.quant}"


# TinyLlama-1.1B-Chat-v1.0's config.json.
TINYLLAMA = TwinSpec(n_layer=22, n_embd=2048, n_head=32, n_head_kv=4, n_ff=5632)
# The tests' twin: the same vocabulary and attention layout, small enough to run in a blink.
# Row sizes stay multiples of 256 so Q5_K_M quantises every matrix as it does for the real one.
TINY = TwinSpec(n_layer=2, n_embd=256, n_head=4, n_head_kv=2, n_ff=768, twin_of="TinyLlama layout, 2 small layers")
TWINS = {"tinyllama": TINYLLAMA, "tiny": TINY}


def _tensor_shapes(spec: TwinSpec, n_vocab: int) -> list[tuple[str, tuple[int, ...]]]:
    """numpy shapes (rows, cols): gguf stores them reversed, as ggml's ne[]."""
    e, kv = spec.n_embd, spec.head_dim * spec.n_head_kv
    shapes = [("token_embd.weight", (n_vocab, e))]
    for i in range(spec.n_layer):
        b = f"blk.{i}."
        shapes += [
            (b + "attn_norm.weight", (e,)),
            (b + "attn_q.weight", (e, e)),
            (b + "attn_k.weight", (kv, e)),
            (b + "attn_v.weight", (kv, e)),
            (b + "attn_output.weight", (e, e)),
            (b + "ffn_norm.weight", (e,)),
            (b + "ffn_gate.weight", (spec.n_ff, e)),
            (b + "ffn_down.weight", (e, spec.n_ff)),
            (b + "ffn_up.weight", (spec.n_ff, e)),
        ]
    shapes += [("output_norm.weight", (e,)), ("output.weight", (n_vocab, e))]
    return shapes


def write_f16(spec: TwinSpec, vocab: Path, out: Path, seed: int = 0) -> None:
    """Stream the F16 GGUF tensor by tensor, so memory stays at one tensor's size."""
    import numpy as np
    from gguf import GGUFReader, GGUFValueType, GGUFWriter

    src = GGUFReader(vocab, "r")
    tokens = src.get_field("tokenizer.ggml.tokens")
    n_vocab = len(tokens.data)
    w = GGUFWriter(out, "llama")
    w.add_name(f"edgebench timing twin ({spec.label()})")
    w.add_file_type(1)  # LLAMA_FTYPE_MOSTLY_F16
    w.add_context_length(spec.n_ctx)
    w.add_embedding_length(spec.n_embd)
    w.add_block_count(spec.n_layer)
    w.add_feed_forward_length(spec.n_ff)
    w.add_rope_dimension_count(spec.head_dim)
    w.add_head_count(spec.n_head)
    w.add_head_count_kv(spec.n_head_kv)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_bool(SYNTHETIC_KEY, True)
    w.add_string(TWIN_OF_KEY, spec.twin_of)
    for field in src.fields.values():
        if not field.name.startswith("tokenizer."):
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == GGUFValueType.ARRAY else None
        w.add_key_value(field.name, field.contents(), vtype, sub_type=sub)
    shapes = _tensor_shapes(spec, n_vocab)
    for name, shape in shapes:
        dtype = np.float32 if len(shape) == 1 else np.float16
        w.add_tensor_info(name, shape, np.dtype(dtype), int(np.prod(shape)) * np.dtype(dtype).itemsize)
    w.write_header_to_file(out)
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    rng = np.random.default_rng(seed)
    for _name, shape in shapes:
        if len(shape) == 1:
            w.write_tensor_data(np.ones(shape, dtype=np.float32))
        else:
            # std 0.02, as the model's initialiser; scale keeps activations finite over 22 layers
            data = rng.standard_normal(shape, dtype=np.float32)
            data *= 0.02
            w.write_tensor_data(data.astype(np.float16))
            del data
    w.close()


def synthesize(spec: TwinSpec, vocab: Path, quantize_bin: Path, out: Path, seed: int = 0, log=print) -> dict:
    """Write the twin to `out` (atomically: a half-written file never carries the final name)."""
    from orchestrator import extras

    extras.require("twin", "synthesizing the timing twin")
    out.parent.mkdir(parents=True, exist_ok=True)
    f16 = out.with_name(out.name + ".f16.partial")
    part = out.with_name(out.name + ".partial")
    try:
        log(f"  writing F16 weights ({spec.label()}, seed {seed})")
        write_f16(spec, vocab, f16, seed)
        threads = str(os.cpu_count() or 1)
        log(f"  quantising to {spec.quant} with {quantize_bin}")
        sh(Command((str(quantize_bin), str(f16), str(part), spec.quant, threads)))
        fsutil.replace_file(part, out)
    finally:
        f16.unlink(missing_ok=True)
        part.unlink(missing_ok=True)
    return {"spec": asdict(spec), "seed": seed}
