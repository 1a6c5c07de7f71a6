"""edgebench installed from a wheel, not an editable checkout: the package data (the llama.cpp
patch, the HTML template) must come with it and be found through the installed package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parent.parent

# Renders the run summary through the installed package, with a run of one query whose output
# would be markup if the template were not the escaping one.
RENDER = textwrap.dedent("""
    import json, sys, types
    from pathlib import Path
    from orchestrator import summary
    from orchestrator.bootstrap.patch import nano_patch
    manifest = {"run_id": "r1", "created_at": "now", "platform": {"hostname": "h", "cpu_model": "c",
                "cpu_count": 2, "profile": "host"}, "binary": {"path": "/b", "commit": "a33e6a0",
                "patch_state": "applied"}, "model": {"path": "/m", "file_type_name": "Q5_K_M", "block_count": 22,
                "synthetic": True, "twin_of": "TinyLlama"}}
    records = [{"query_id": "q1", "category": "simple", "attempt": "a", "status": "ok", "ttft_s": 0.2,
                "tbt_s": [0.03], "decode_tok_s": 25.0, "peak_rss_bytes": 8e8, "output_text": "<b>x</b>",
                "validation": {"ok": True}}]
    out = summary.write_html(types.SimpleNamespace(manifest=manifest, dir=Path(sys.argv[1])),
                             summary.rows_for(records), records)
    print(json.dumps({"summary": summary.__file__, "patch": str(nano_patch()),
                      "patch_head": nano_patch().read_text()[:30], "html": out.read_text()}))
""")


@pytest.mark.slow
def test_an_installed_wheel_has_its_patch_and_templates(tmp_path):
    import json

    # A copy as a fresh clone has it: no egg-info or build/lib left by an editable install or an
    # earlier build, which setuptools would otherwise fold into the wheel.
    src = tmp_path / "src"
    shutil.copytree(CHECKOUT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "reports", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache"))
    wheels = tmp_path / "wheels"
    # Built as pip builds it for a user: setuptools in an isolated build env, from pip's index.
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(src)],
                   check=True, cwd=tmp_path)
    (wheel,) = wheels.glob("edgebench-*.whl")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)
    # The dependencies (click, jinja2, ...) come from the test's own venv, appended after the
    # new venv's site-packages; .pth files there (the editable checkout's finder) are not run.
    site = Path(subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "edgebench-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    outside = tmp_path / "elsewhere"  # not the checkout: nothing can come from the source tree
    outside.mkdir()
    env = {**os.environ, "EDGEBENCH_ROOT": str(outside), "PYTHONPATH": ""}
    env.pop("PYTHONPATH")

    def run(*args):
        return subprocess.run([*map(str, args)], cwd=outside, env=env, capture_output=True, text=True, timeout=120)

    res = run(py, "-m", "orchestrator", "--help")
    assert res.returncode == 0, res.stderr
    for command in ("bench", "bootstrap", "doctor", "run", "workloads"):
        assert f"  {command} " in res.stdout

    res = run(py, "-c", RENDER, outside)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    assert got["summary"].startswith(str(site)) and got["patch"].startswith(str(site))
    assert got["patch_head"] == "--- a/Makefile\n+++ b/Makefile\n"
    assert "&lt;b&gt;x&lt;/b&gt;" in got["html"] and "<b>x</b>" not in got["html"]

    res = run(venv / "bin" / "edgebench", "bootstrap", "--dry-run", "--profile", "host", "--llama-source", "pypi")
    assert res.returncode == 0, res.stderr
    assert f"--input {site}/orchestrator/data/patches/llama.cpp-a33e6a0-jetson-nano.patch" in res.stdout
