"""Run the nano-check's checks, judge them against the acceptance the Nano's build needs, and
write build/nano-check/report.json (the figures, the verdicts, and how long each part took)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from orchestrator.errors import UserError
from orchestrator.nanocheck import common, constraints

CHECKS = ("cuda", "aarch64", "python")
REPORT = "report.json"


def _judge(key: str, value, ok: bool, want: str) -> dict:
    return {"key": key, "value": value, "want": want, "ok": bool(ok)}


def acceptance(report: dict) -> list[dict]:
    """One verdict per acceptance key of the checks that ran."""
    from orchestrator.nanocheck.cuda import PATCH_REG_CAP

    out = []
    if "nvcc_version" in report:
        r = report
        out += [
            _judge("nvcc_version", r["nvcc_version"], str(r["nvcc_version"]).startswith("11.8"), "11.8"),
            _judge("arch", r["arch"], r["arch"] == "sm_53", "sm_53"),
            _judge("sass_archs", r["sass_archs"], r["sass_archs"] == ["sm_53"], "[sm_53]"),
            _judge("maxrregcount_in_ptxas", r["maxrregcount_in_ptxas"], r["maxrregcount_in_ptxas"] is True, "true"),
            _judge("max_registers_unbounded", r["max_registers_unbounded"],
                   r["max_registers_unbounded"] is not None and r["max_registers_unbounded"] <= PATCH_REG_CAP,
                   f"<= {PATCH_REG_CAP}"),
            _judge("over_block_limit", [k["name"] for k in r["over_block_limit"]], not r["over_block_limit"],
                   "none"),
            _judge("unpatched.max_registers_unbounded", r["unpatched"].get("max_registers_unbounded"),
                   r["unpatched"].get("sass_archs") == ["sm_53"] and r["unpatched"].get("kernels", 0) > 0,
                   "figures of an sm_53 build"),
            _judge("unpatched.maxrregcount_in_ptxas", r["unpatched"].get("maxrregcount_in_ptxas"),
                   r["unpatched"].get("ptxas_line_found") and r["unpatched"].get("maxrregcount_in_ptxas") is False,
                   "false (no patch, no cap)"),
        ]
    if "qemu_cpu" in report:
        r = report
        out += [
            _judge("qemu_cpu", r["qemu_cpu"], r["qemu_cpu"] == "cortex-a57", "cortex-a57"),
            _judge("aarch64_lse_canary", r["aarch64_lse_canary"]["cortex_a57_rejects_lse"],
                   r["aarch64_lse_canary"]["cortex_a57_rejects_lse"], "SIGILL on cortex-a57, runs on max"),
            _judge("aarch64_main_tokens", r["aarch64_main_tokens"], r["aarch64_main_tokens"] > 0, "> 0"),
            _judge("aarch64_stream_matched", r["aarch64_stream_matched"], r["aarch64_stream_matched"], "true"),
            _judge("aarch64_tokenize_matches_host", r["aarch64_tokenize_matches_host"],
                   r["aarch64_tokenize_matches_host"], "true"),
        ]
    if "imports" in report:
        bad = {k: v["status"] for k, v in report["imports"].items() if v["status"] != "ok"}
        value = bad or f"{len(report['imports'])} ok"
        out.append(_judge("imports", value, bool(report["imports"]) and not bad, "every package ok"))
    if "constraints" in report:
        diff = report["constraints"]["disagreements"]
        out.append(_judge("constraints", diff or f"{len(report['imports'])} pins agree", not diff,
                          "the committed pins are the versions proven here"))
    return out


def write(path: Path, report: dict) -> None:
    from orchestrator.fsutil import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(report, indent=2, sort_keys=True, default=str).encode("utf-8"))


def run(out_dir: Path, checks: tuple[str, ...] = CHECKS, install: bool = True, log=print,
        write_constraints: bool = False) -> dict:
    """Run the checks in `out_dir` (wiped per check) and write out_dir/report.json; with
    `write_constraints`, first rewrite the Nano's pip constraints from the Python check."""
    common.ensure_tools(checks, install, log)
    started = time.time()
    report: dict = {"checks": list(checks), "timings_s": {}}
    if "cuda" in checks:
        from orchestrator.nanocheck import cuda

        t = time.time()
        report.update(cuda.check(out_dir / "cuda", log))
        report["timings_s"]["cuda"] = round(time.time() - t, 1)
    if "aarch64" in checks:
        from orchestrator.bootstrap import scratch
        from orchestrator.nanocheck import aarch64

        t = time.time()
        log("aarch64: the host build and the tiny twin (cached after the first time)")
        host = scratch.ensure_llama_build()
        model = scratch.ensure_tiny_twin(host, scratch.ensure_vocab())
        report.update(aarch64.check(out_dir / "aarch64", model, host / "tokenize", log))
        report["aarch64_model"] = model.name
        report["timings_s"]["aarch64"] = round(time.time() - t, 1)
    if "python" in checks:
        from orchestrator.nanocheck import pyimports

        t = time.time()
        report.update(pyimports.check(out_dir / "python", log))
        report["timings_s"]["python"] = round(time.time() - t, 1)
        if write_constraints:
            try:
                log(f"python: pinned {len(report['imports'])} distributions in {constraints.write(report)}")
            except UserError as exc:  # the report still gets written: it says what failed
                log(f"python: constraints left as they were: {exc.format_message()}")
        report["constraints"] = constraints.compare(report)
    report["timings_s"]["total"] = round(time.time() - started, 1)
    report["acceptance"] = acceptance(report)
    report["ok"] = all(a["ok"] for a in report["acceptance"])
    write(out_dir / REPORT, report)
    return report


def table(report: dict) -> str:
    rows = [(a["key"], _short(a["value"]), a["want"], "ok" if a["ok"] else "FAIL") for a in report["acceptance"]]
    widths = [max(len(r[i]) for r in [("key", "value", "want", ""), *rows]) for i in range(3)]
    lines = [f"{'key':<{widths[0]}}  {'value':<{widths[1]}}  {'want':<{widths[2]}}"]
    lines += [f"{k:<{widths[0]}}  {v:<{widths[1]}}  {w:<{widths[2]}}  {s}" for k, v, w, s in rows]
    timings = ", ".join(f"{k} {v:.0f} s" for k, v in report["timings_s"].items())
    lines.append(f"time: {timings}")
    return "\n".join(lines)


def _short(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
