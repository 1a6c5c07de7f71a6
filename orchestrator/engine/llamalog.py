"""llama.cpp's own account of a run: the `-ld` YAML file and the log lines on stderr."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

# libyaml's loader when PyYAML has it: the pure-Python one costs ~10 ms per query file
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

TIMING_KEYS = ("t_load_us", "t_p_eval_us", "t_eval_us", "t_sample_us", "n_p_eval", "n_eval", "n_sample",
               "ts_p_eval", "ts_eval", "n_gpu_layers", "ctx_size", "batch_size", "threads", "seed",
               "cpu_has_cublas", "n_predict", "ignore_eos")


def parse_yaml(path: Path) -> dict:
    """The whole file when it is valid YAML; otherwise each top-level `key: value` line on its
    own (its header block is not strict YAML everywhere), so one odd line loses one key only."""
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        data = yaml.load(text, Loader=_LOADER)
        if isinstance(data, dict):
            return data
    except yaml.YAMLError:
        pass
    out: dict = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z_][\w-]*):\s?(.*)$", line)
        if not m or not m.group(2).strip() or m.group(2).strip() == "|":
            continue
        try:
            value = yaml.safe_load(f"v: {m.group(2)}")["v"]
        except yaml.YAMLError:
            continue
        out[m.group(1)] = value
    return out


def find_yaml(log_dir: Path) -> Path | None:
    files = sorted(log_dir.glob("*.yml"))
    return files[-1] if files else None


_STDERR_PATTERNS = {
    "kv_self_mib": re.compile(r"KV self size\s*=\s*([\d.]+) MiB"),
    "offloaded_layers": re.compile(r"offloaded (\d+)/(\d+) layers to GPU"),
    "cpu_buffer_mib": re.compile(r"CPU buffer size\s*=\s*([\d.]+) MiB"),
    "cuda_buffer_mib": re.compile(r"CUDA\d* buffer size\s*=\s*([\d.]+) MiB"),
    "compute_buffer_mib": re.compile(r"compute buffer size\s*=\s*([\d.]+) MiB"),
}


def parse_stderr(text: str) -> dict:
    out: dict = {}
    for key, pat in _STDERR_PATTERNS.items():
        found = pat.findall(text)
        if not found:
            continue
        if key == "offloaded_layers":
            done, total = found[-1]
            out[key] = f"{done}/{total}"
        elif key == "kv_self_mib":
            out[key] = float(found[-1])
        else:
            out[key] = round(sum(float(x) for x in found), 2)
    if "no kernel image is available" in text:
        out["cuda_arch_mismatch"] = True
    return out


def tail(path: Path, n_bytes: int = 2000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - n_bytes))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""
