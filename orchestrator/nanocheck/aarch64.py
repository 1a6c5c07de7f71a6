"""Check 2: the Nano's CPU. `main` and `tokenize` cross-built for aarch64 with the flags the
patched Makefile gives on the board, run under `qemu-aarch64-static -cpu cortex-a57` (ARMv8.0,
no LSE atomics, as the Nano's A57 cores); edgebench's own stream attribution must account for
every byte `main` streamed, and `tokenize` must agree with the host build."""

from __future__ import annotations

import re
import shutil
import signal
from pathlib import Path

from orchestrator.nanocheck import common

QEMU_CPU = "cortex-a57"
PROMPT = "Write one sentence about the Jetson Nano."
N_PREDICT = 12
# a33e6a0's Makefile adds -mcpu=native to the C flags on aarch64 (the patch drops the C++ one);
# a cross compiler has no `native`, and on a Nano GCC resolves it to cortex-a57.
PIN_CPU = [
    "# on the board -mcpu=native resolves to the Nano's CPU; a cross compiler needs it named",
    *(f"override {v} := $(patsubst -mcpu=native,-mcpu={QEMU_CPU},$({v}))" for v in ("CFLAGS", "CXXFLAGS")),
]
# An ARMv8.1 instruction (LSE atomic add): the emulated A57 must refuse it, or the check proves nothing.
LSE_CANARY = r"""
int main(void) {
    int v = 1, old;
    __asm__ volatile("ldadd %w1, %w0, [%2]" : "=&r"(old) : "r"(1), "r"(&v) : "memory");
    return v == 2 ? 0 : 1;
}
"""


def qemu_argv(cpu: str = QEMU_CPU) -> list[str]:
    return [shutil.which(common.QEMU) or common.QEMU, "-cpu", cpu, "-L", str(common.CROSS_SYSROOT)]


def cross_vars() -> dict[str, str]:
    return {"CC": common.CROSS_GCC, "CXX": common.CROSS_GXX, "UNAME_M": "aarch64", "UNAME_P": "unknown",
            "LLAMA_NO_CCACHE": "1"}


def cpu_flags(build_log: str) -> dict[str, list[str]]:
    """The -mcpu/-march flags of each C and C++ compile command the build ran."""
    out: dict[str, set[str]] = {"c": set(), "c++": set()}
    for line in build_log.splitlines():
        if " -c " not in line:
            continue
        lang = "c++" if line.startswith(common.CROSS_GXX) else "c" if line.startswith(common.CROSS_GCC) else None
        if lang:
            out[lang].update(re.findall(r"-m(?:cpu|arch)=\S+", line))
    return {k: sorted(v) for k, v in out.items()}


def lse_canary(work: Path) -> dict:
    src, exe = work / "lse-canary.c", work / "lse-canary"
    src.write_text(LSE_CANARY)
    common.run([common.CROSS_GCC, "-static", "-march=armv8.1-a", "-O1", "-o", str(exe), str(src)]).check_returncode()
    a57 = common.run([*qemu_argv(), str(exe)])
    newer = common.run([*qemu_argv("max"), str(exe)])
    return {"cortex_a57_rc": a57.returncode, "max_rc": newer.returncode,
            "cortex_a57_rejects_lse": a57.returncode == -signal.SIGILL and newer.returncode == 0}


def stream_check(main: Path, model: Path, work: Path) -> dict:
    """`main` under qemu on a pty, as `edgebench run` spawns it; then its YAML's token ids against
    the streamed bytes through edgebench's own attribution."""
    from orchestrator.engine import llamalog, metrics
    from orchestrator.engine.child import run_child
    from orchestrator.engine.vocab import token_pieces
    from orchestrator.ggufile import read_header

    ld = work / "ld"
    shutil.rmtree(ld, ignore_errors=True)
    ld.mkdir(parents=True)
    argv = [*qemu_argv(), str(main), "-m", str(model), "-p", PROMPT, "-n", str(N_PREDICT), "-c", "128", "-s", "1",
            "-t", "2", "-ld", str(ld), "--ignore-eos"]
    child = run_child(argv, work, work / "main-stderr.log", [], idle_timeout_s=300, timeout_s=600)
    yml = llamalog.find_yaml(ld)
    y = llamalog.parse_yaml(yml) if yml else {}
    ids = [i for i in (y.get("output_tokens") or []) if isinstance(i, int)]
    pieces = token_pieces(read_header(model, tensors=False)[0])
    out_pieces = [pieces[i] for i in ids if 0 <= i < len(pieces)]
    attributed = metrics.attribute(child.chunks, out_pieces) if child.chunks and ids else {"matched": False}
    (work / "main-stream.bin").write_bytes(b"".join(b for _, b in child.chunks))
    tokens = len(attributed.get("t_tok_ns") or [])
    return {
        "aarch64_main_status": child.status,
        "aarch64_main_error": child.error,
        "aarch64_main_tokens": len(ids),
        "aarch64_stream_tokens": tokens,
        "aarch64_stream_matched": bool(attributed.get("matched")) and tokens == len(ids) > 0,
        "aarch64_output_text": b"".join(out_pieces).decode("utf-8", "replace"),
        "aarch64_main_wall_s": round((child.t_exit_ns - child.t_spawn_ns) / 1e9, 2),
        "aarch64_llama_n_eval": y.get("n_eval"),
    }


def token_ids(out: str) -> list[int]:
    return [int(m.group(1)) for m in re.finditer(r"^\s*(\d+) -> ", out, re.M)]


def tokenize_check(tokenize: Path, host_tokenize: Path, model: Path) -> dict:
    emulated = common.run([*qemu_argv(), str(tokenize), str(model), PROMPT])
    host = common.run([str(host_tokenize), str(model), PROMPT])
    ids, host_ids = token_ids(emulated.stdout), token_ids(host.stdout)
    return {"aarch64_tokenize_ids": ids, "aarch64_tokenize_matches_host": bool(ids) and ids == host_ids}


def check(work: Path, model: Path, host_tokenize: Path, log) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    log(f"aarch64: cross-building main and tokenize (-mcpu={QEMU_CPU} where the Makefile says native)")
    tree = common.fresh_tree(work / "llama", True, log)
    common.override_makefile(tree, PIN_CPU, "cross-build for the Jetson Nano's Cortex-A57")
    build_log = work / "logs" / "aarch64.log"
    build_log.unlink(missing_ok=True)
    common.make(tree, cross_vars(), ("main", "tokenize"), build_log)
    result: dict = {"qemu_cpu": QEMU_CPU, "cross_make_vars": cross_vars(),
                    "aarch64_cpu_flags": cpu_flags(build_log.read_text(errors="replace")),
                    "aarch64_lse_canary": lse_canary(work)}
    file_out = common.run(["file", "-b", str(tree / "main")]).stdout.strip() if shutil.which("file") else ""
    result["aarch64_main_file"] = file_out
    log(f"aarch64: running main under qemu -cpu {QEMU_CPU} on {model.name}")
    result.update(stream_check(tree / "main", model, work))
    result.update(tokenize_check(tree / "tokenize", host_tokenize, model))
    return result
