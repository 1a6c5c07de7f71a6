"""`edgebench bootstrap --engine current`: today's llama.cpp from the llama-cpp-python 0.3.36
sdist, built with CMake (step llama-current): its plan on each profile, its failures before
anything slow, and (slow) the real build and what `doctor` says of it."""

import json
import os
import subprocess
import sys
from pathlib import Path

from waiting import HANG_S

from orchestrator import paths
from orchestrator.bootstrap import llama_current

UNREACHABLE = "http://127.0.0.1:9/"  # the discard port: refused at once


def eb(root, *args, **env):
    full = dict(os.environ, EDGEBENCH_ROOT=str(root), EDGEBENCH_CACHE=str(paths.cache_dir()),
                EDGEBENCH_LLAMA_GIT_URL=UNREACHABLE + "llama.cpp", EDGEBENCH_MODEL_URL=UNREACHABLE + "model.gguf")
    full.update(env)
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], env=full, capture_output=True,
                          text=True, timeout=HANG_S)


def plan(root, *args, **env) -> dict:
    res = eb(root, "bootstrap", "--dry-run", "--format", "json", "--skip-preflight", *args, **env)
    assert res.returncode == 0, res.stderr + res.stdout
    return json.loads(res.stdout)


def step(doc: dict, name: str) -> dict:
    return next(s for s in doc["steps"] if s["step"] == name)


def test_the_default_bootstrap_is_unchanged_and_current_adds_one_cmake_step(tmp_path):
    default = plan(tmp_path, "--profile", "host")
    assert [s["step"] for s in default["steps"]] == ["llama-source", "patch", "build", "model"]
    current = plan(tmp_path, "--profile", "host", "--engine", "current")
    assert [s["step"] for s in current["steps"]] == ["llama-source", "patch", "build", "model", "llama-current"]
    argvs = [c["argv"] for c in step(current, "llama-current")["commands"]]
    assert argvs[0] == ["download", "llama-cpp-python==0.3.36",
                        "sha256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"]
    # the log-flush patch, before CMake sees the tree
    assert argvs[2][:2] == ["patch", "-p1"] and argvs[2][-2:] == [str(llama_current.log_patch()), "--forward"]
    configure, build = argvs[3], argvs[4]
    assert configure[:2] == ["cmake", "-S"] and "-DLLAMA_BUILD_COMMIT=0c1e57098" in configure
    # nothing in the build reaches the network or depends on the machine's extras
    assert {"-DLLAMA_OPENSSL=OFF", "-DLLAMA_USE_PREBUILT_UI=OFF", "-DGGML_CCACHE=OFF"} <= set(configure)
    assert not any("CUDA" in a for a in configure)  # CPU on a host
    assert build[-4:] == ["--target", "llama-completion", "llama-server", "llama-tokenize"]


def test_the_orin_plan_builds_cuda_for_sm_87(tmp_path):
    doc = plan(tmp_path, "--profile", "jetson-orin", "--engine", "current")
    cmds = step(doc, "llama-current")["commands"]
    configure = cmds[3]
    assert "-DGGML_CUDA=ON" in configure["argv"] and "-DCMAKE_CUDA_ARCHITECTURES=87" in configure["argv"]
    assert configure["env"]["PATH"].endswith("/bin:$PATH")  # nvcc found by CMake


def test_the_nano_is_refused_with_the_reason(tmp_path):
    res = eb(tmp_path, "bootstrap", "--dry-run", "--skip-preflight", "--profile", "jetson-nano", "--engine",
             "current")
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "C++17" in res.stderr and "CUDA 10.2" in res.stderr


def test_without_cmake_it_stops_before_any_step_naming_apt_install(tmp_path):
    bare = tmp_path / "bin"
    bare.mkdir()
    res = eb(tmp_path / "root", "bootstrap", "--profile", "host", "--engine", "current", PATH=str(bare))
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "no cmake on PATH" in res.stderr and "apt install cmake" in res.stderr
    assert not (tmp_path / "root" / "build" / "ledger.json").exists()  # nothing ran


def test_pypi_unreachable_and_no_cached_sdist_stops_at_once(tmp_path):
    cache = tmp_path / "cache"
    res = eb(tmp_path / "root", "bootstrap", "--profile", "host", "--engine", "current",
             EDGEBENCH_CACHE=str(cache), EDGEBENCH_PYPI_INDEX=UNREACHABLE + "simple")
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "127.0.0.1:9" in res.stderr and llama_current.SDIST_FILE in res.stderr
    assert not (tmp_path / "root" / "build" / "ledger.json").exists()


def test_the_step_without_its_sdist_says_where_to_put_it(tmp_path, monkeypatch):
    import pytest

    from orchestrator.bootstrap.ledger import Ledger
    from orchestrator.bootstrap.steps import Context, Options
    from orchestrator.errors import UserError

    monkeypatch.setenv("EDGEBENCH_PYPI_INDEX", UNREACHABLE + "simple")
    opts = Options(root=tmp_path, cache=tmp_path / "cache", profile="host")
    ctx = Context(opts, Ledger(tmp_path / "ledger.json"), {"cpu_count": 2}, log=lambda s: None)
    with pytest.raises(UserError) as err:
        llama_current.LlamaCurrent().run(ctx)
    assert "does not hold it" in str(err.value)
    assert str(tmp_path / "cache" / "downloads") in err.value.fix and llama_current.SDIST_SHA256 in err.value.fix


# -- the real build (slow: the llama_current_dir fixture builds it once per machine) ------------

def test_the_build_names_its_commit_and_runs(llama_current_dir: Path):
    for target in llama_current.TARGETS:
        assert (llama_current_dir / target).is_file()
    out = subprocess.run([str(llama_current_dir / "llama-completion"), "--version"], capture_output=True, text=True,
                         timeout=HANG_S)
    assert f"commit {llama_current.COMMIT})" in out.stdout + out.stderr


def test_doctor_shows_both_builds(tmp_path, llama_current_dir: Path):
    from orchestrator.bootstrap.ledger import Ledger

    # the cached build, recorded as a checkout's bootstrap records it
    cached_root = llama_current_dir.parents[3]
    entry = Ledger(paths.ledger_path(cached_root)).get("llama-current")
    build = tmp_path / "build"
    (build / llama_current.DIR / "build").mkdir(parents=True)
    (build / llama_current.DIR / "build" / "bin").symlink_to(llama_current_dir)
    ledger = Ledger(paths.ledger_path(tmp_path))
    ledger.record("llama-current", dict(entry, binaries={
        t: {"path": str(build / llama_current.DIR / "build" / "bin" / t), "sha256": v["sha256"]}
        for t, v in entry["binaries"].items()}))
    doc = json.loads(eb(tmp_path, "doctor", "--format", "json").stdout)
    cur = doc["llama_current"]
    assert cur["built"] is True and cur["commit"] == llama_current.COMMIT and cur["backend"] == "cpu"
    assert cur["binaries"]["llama-server"].endswith("llama-server")
    assert doc["llama_binary"] is None  # the a33e6a0 build is reported on its own (absent here)
    table = eb(tmp_path, "doctor").stdout
    assert f"llama current {llama_current.COMMIT} (cpu" in table


def test_a_cpu_build_is_not_taken_for_the_orins_cuda_build(tmp_path):
    from orchestrator import net
    from orchestrator.bootstrap.ledger import Ledger

    bins = llama_current.bin_dir(tmp_path / "build")
    bins.mkdir(parents=True)
    recorded = {}
    for t in llama_current.TARGETS:
        (bins / t).write_bytes(t.encode())
        recorded[t] = {"path": str(bins / t), "sha256": net.sha256_file(bins / t)}
    Ledger(paths.ledger_path(tmp_path)).record("llama-current", {
        "status": "done", "recipe": llama_current.RECIPE, "cmake_options": llama_current.cmake_options("host"),
        "binaries": recorded})
    assert step(plan(tmp_path, "--profile", "host", "--engine", "current"), "llama-current")["done"] is True
    assert step(plan(tmp_path, "--profile", "jetson-orin", "--engine", "current"), "llama-current")["done"] is False


def test_the_timings_survive_a_log_thread_left_behind(tmp_path, llama_current_dir: Path, tiny_model: Path):
    """Upstream's logger is a leaked singleton whose thread writes the lines: a program that
    returns before the thread catches up loses the last ones, llama-completion's timings among
    them (a busy core did it once in a loaded CI pass). The shim slows that thread by 5 ms a line,
    far behind; the patched build joins it at exit, so every line is written."""
    from orchestrator.bootstrap import patch
    from orchestrator.engine.llama_completion import parse_perf

    assert patch.patch_state(llama_current.source_dir(llama_current_dir.parents[3] / "build"),
                             llama_current.log_patch()) == "applied"
    shim = tmp_path / "slowlog.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", str(shim), str(Path(__file__).parent / "data" / "slowlog.c"),
                    "-ldl"], check=True, timeout=HANG_S)
    log = tmp_path / "completion.log"
    env = dict(os.environ, LD_PRELOAD=str(shim), LD_LIBRARY_PATH=str(llama_current_dir))
    with open(tmp_path / "stderr.log", "wb") as err:
        res = subprocess.run([str(llama_current_dir / "llama-completion"), "-m", str(tiny_model), "-p", "hello",
                              "-n", "8", "--ignore-eos", "-no-cnv", "--no-warmup", "-t", "1", "-c", "256",
                              "--log-prefix", "--log-timestamps", "-lv", "5", "--log-file", str(log)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env, timeout=HANG_S)
    assert res.returncode == 0
    for written in (log.read_bytes(), (tmp_path / "stderr.log").read_bytes()):
        perf = parse_perf(written)
        assert perf.get("t_eval_us") is not None and perf.get("n_eval") == 7, written[-2000:]
