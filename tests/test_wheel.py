"""edgebench installed from a wheel, not an editable checkout, into a fresh venv in an empty
folder: the package data (the llama.cpp patch, the templates, the study's plans, the default
workload) comes with it and is found through the installed package; its dependencies come
from the package index as a user's pip resolves them; an experiment plan, a one-query run,
its report (once the report extra is installed) and doctor all work there."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from waiting import HANG_S

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


class Installed:
    """A wheel built from a copy of this checkout, installed (core requirements only) into a venv;
    commands run from an empty folder, with EDGEBENCH_ROOT an empty folder and no checkout on any path."""

    def __init__(self, tmp: Path):
        # A copy as a fresh clone has it: no egg-info or build/lib left by an editable install or an
        # earlier build, which setuptools would otherwise fold into the wheel.
        src = tmp / "src"
        shutil.copytree(CHECKOUT, src, ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "reports", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache"))
        wheels = tmp / "wheels"
        # Built as pip builds it for a user: setuptools in an isolated build env, from pip's index.
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(src)],
                       check=True, cwd=tmp)
        (self.wheel,) = wheels.glob("edgebench-*.whl")
        shutil.rmtree(src)
        self.venv = tmp / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(self.venv)], check=True)
        self.py = self.venv / "bin" / "python"
        self.pip_install(str(self.wheel))
        self.site = Path(self.python("-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
        self.cwd = tmp / "elsewhere"  # not the checkout: nothing can come from the source tree
        self.cwd.mkdir()
        self.root = tmp / "root"  # EDGEBENCH_ROOT: an empty project root, no plans, no workloads
        self.root.mkdir()
        path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                               if p and not Path(p).resolve().is_relative_to(CHECKOUT))
        self.env = {**os.environ, "EDGEBENCH_ROOT": str(self.root), "EDGEBENCH_CACHE": str(tmp / "cache"),
                    "PATH": path}
        self.env.pop("PYTHONPATH", None)

    def pip_install(self, spec: str) -> None:
        subprocess.run([self.py, "-m", "pip", "install", "-q", "--disable-pip-version-check", spec], check=True,
                       timeout=1800)

    def python(self, *args) -> subprocess.CompletedProcess:
        return subprocess.run([self.py, *map(str, args)], capture_output=True, text=True, check=True)

    def run(self, *args, timeout: float = HANG_S) -> subprocess.CompletedProcess:
        return subprocess.run([*map(str, args)], cwd=self.cwd, env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def edgebench(self, *args, timeout: float = HANG_S) -> subprocess.CompletedProcess:
        return self.run(self.venv / "bin" / "edgebench", *args, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    return Installed(tmp_path_factory.mktemp("wheel"))


@pytest.mark.slow
def test_an_installed_wheel_has_its_patch_and_templates(installed):
    site = installed.site
    res = installed.run(installed.py, "-m", "orchestrator", "--help")
    assert res.returncode == 0, res.stderr
    for command in ("bench", "bootstrap", "doctor", "run", "workloads"):
        assert f"  {command} " in res.stdout

    res = installed.run(installed.py, "-c", RENDER, installed.cwd)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    assert got["summary"].startswith(str(site)) and got["patch"].startswith(str(site))
    assert got["patch_head"] == "--- a/Makefile\n+++ b/Makefile\n"
    assert "&lt;b&gt;x&lt;/b&gt;" in got["html"] and "<b>x</b>" not in got["html"]

    res = installed.edgebench("bootstrap", "--dry-run", "--profile", "host", "--llama-source", "pypi")
    assert res.returncode == 0, res.stderr
    assert f"--input {site}/orchestrator/data/patches/llama.cpp-a33e6a0-jetson-nano.patch" in res.stdout


# make bench's sampler cost through the installed package alone: the recorded Nano is package data.
SAMPLER_COST = textwrap.dedent("""
    import json, sys
    from orchestrator.sampling import cost
    print(json.dumps({"cost": cost.__file__, "figures": cost.sampler_cpu_figures(0.5, 1.1), "path": sys.path}))
""")


@pytest.mark.slow
def test_an_installed_wheel_measures_the_samplers_on_its_own_recorded_board(installed):
    res = installed.run(installed.py, "-c", SAMPLER_COST)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    assert got["cost"].startswith(str(installed.site))
    assert not any(Path(p).resolve().is_relative_to(CHECKOUT) for p in got["path"] if p)
    assert set(got["figures"]) == {f"sampler_cpu_pct_{n}_{i}" for n in ("jtop", "tegrastats", "sysfs")
                                   for i in ("10ms", "500ms")}
    # The stand-in tegrastats ran and the sysfs tree was there: a sampler with nothing to read costs nothing.
    assert all(v > 0 for k, v in got["figures"].items() if "jtop" not in k), got["figures"]

def test_the_wheel_plans_runs_reports_and_diagnoses_outside_any_checkout(installed, llama_bin_dir, tiny_model):
    site = installed.site
    binary, model = ("--binary", llama_bin_dir / "main"), ("--model", tiny_model)

    # the study's plan and the default workload come from the installed package
    res = installed.edgebench("experiment", "granular", "--plan-only", *binary, *model)
    assert res.returncode == 0, res.stderr
    plan = json.loads(res.stdout)
    assert plan["plan_file"] == f"{site}/orchestrator/data/plans/granular.yaml"
    assert len(plan["queries"]) == 5 and plan["n_items"] == 5 * 4  # a median query per category, 1 + 3 times

    # one query on the real binary and the tiny twin, into EDGEBENCH_ROOT/reports
    res = installed.edgebench("run", *binary, *model, "--limit", "1", "--category", "simple", "--ignore-eos")
    assert res.returncode == 0, res.stderr
    (run_dir,) = (installed.root / "reports").iterdir()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["workload"]["path"] == f"{site}/orchestrator/data/workloads/default.jsonl"
    records = [json.loads(line) for line in (run_dir / "queries.jsonl").read_text().splitlines()]
    assert [r["status"] for r in records] == ["ok"]

    # the report without its extra: which extra, the command that installs it, exit 1, no traceback
    hint = res.stdout.strip().splitlines()[-1]
    res = installed.edgebench("report", run_dir)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "needs the `report` extra" in res.stderr and f"{installed.py} -m pip install 'edgebench[report]'" \
        in res.stderr
    assert hint.startswith("figures, CSV and Parquet: ") and "edgebench[report]" in hint

    installed.pip_install(f"{installed.wheel}[report]")
    res = installed.edgebench("run", *binary, *model, "--limit", "1", "--category", "simple", "--ignore-eos")
    assert res.returncode == 0, res.stderr
    hint = res.stdout.strip().splitlines()[-1]
    prefix = "figures, CSV and Parquet: "
    assert hint.startswith(prefix)
    # the printed command works as typed, from where the user stands
    res = installed.run("bash", "-c", hint[len(prefix):])
    assert res.returncode == 0, res.stderr
    second = Path(shlex.split(hint[len(prefix):])[-1])
    assert (second / "report.html").is_file() and (second / "queries.csv").is_file()

    res = installed.edgebench("report", run_dir)
    assert res.returncode == 0, res.stderr
    assert (run_dir / "report.html").is_file()

    # a run folder copied from a board (the committed Nano-shaped run) renders here too
    board_run = installed.cwd / "from-the-nano"
    shutil.copytree(CHECKOUT / "tests" / "data" / "runs" / "nano-gpu", board_run)
    res = installed.edgebench("report", board_run)
    assert res.returncode == 0, res.stderr
    assert (board_run / "report.html").is_file() and (board_run / "queries.parquet").is_file()

    res = installed.edgebench("doctor")
    assert "Traceback" not in res.stderr
    assert f"python        {sys.version.split()[0]} ({installed.py})" in res.stdout
