"""Prompt templates. `raw` is the study's (the prompt as is); `zephyr` is TinyLlama-Chat's
chat format (`<|system|>`, `<|user|>`, `<|assistant|>`, turns closed by `</s>`)."""

from __future__ import annotations

TEMPLATES = ("raw", "zephyr")
ZEPHYR_SYSTEM = "You are a helpful assistant."


def apply_template(name: str, prompt: str, system: str = ZEPHYR_SYSTEM) -> str:
    if name == "raw":
        return prompt
    if name == "zephyr":
        return f"<|system|>\n{system}</s>\n<|user|>\n{prompt}</s>\n<|assistant|>\n"
    raise ValueError(f"unknown template {name!r} (one of: {', '.join(TEMPLATES)})")
