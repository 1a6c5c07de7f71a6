"""`edgebench bootstrap` end to end on this host, offline from GitHub and Hugging Face:
the PyPI sdist of llama.cpp a33e6a0, the patch, a real build, a synthetic twin."""

import json
import os
import subprocess
import sys
import time

import pytest
from waiting import HANG_S

from orchestrator import paths

UNREACHABLE = "http://127.0.0.1:9/"  # the discard port: refused at once, never GitHub


def eb(root, *args, **env):
    full = dict(os.environ, EDGEBENCH_ROOT=str(root), EDGEBENCH_CACHE=str(paths.cache_dir()),
                EDGEBENCH_LLAMA_GIT_URL=UNREACHABLE + "llama.cpp", EDGEBENCH_MODEL_URL=UNREACHABLE + "model.gguf",
                **env)
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], env=full, capture_output=True,
                          text=True, timeout=HANG_S)


@pytest.fixture(scope="module")
def bootstrapped(tmp_path_factory, llama_bin_dir, vocab_gguf):
    # llama_bin_dir / vocab_gguf: the sdists are in the cache already, as on a user's second clone
    root = tmp_path_factory.mktemp("clone")
    started = time.monotonic()
    res = eb(root, "bootstrap", "--twin", "tiny")
    return root, res, time.monotonic() - started


def test_bootstrap_falls_back_and_leaves_a_patched_main_and_a_synthetic_model(bootstrapped):
    root, res, _ = bootstrapped
    assert res.returncode == 0, res.stderr + res.stdout
    assert "GitHub is unreachable" in res.stdout and "using the PyPI sdist" in res.stdout
    assert "synthesising a timing twin" in res.stdout
    steps = json.loads((root / "build" / "ledger.json").read_text())["steps"]
    assert "127.0.0.1:9" in steps["llama-source"]["fallback_reason"]
    assert steps["model"]["source"] == "twin" and "127.0.0.1:9" in steps["model"]["fallback_reason"]
    res = eb(root, "doctor", "--format", "json")
    assert res.returncode == 0  # nothing missing
    doc = json.loads(res.stdout)
    assert doc["llama_commit"] == "a33e6a0"
    assert doc["patch_applied"] is True
    assert doc["model_synthetic"] is True
    assert doc["llama_binary"] == str(root / "build" / "llama.cpp" / "main")
    assert doc["build_flags"]["targets"] == ["main", "tokenize", "quantize", "llama-bench", "server"]
    assert len(doc["model_sha256"]) == 64 and doc["problems"] == []
    assert doc["model_gguf"]["vocab_size"] == 32000


def test_built_main_answers_a_prompt(bootstrapped):
    root, _, _ = bootstrapped
    doc = json.loads(eb(root, "doctor", "--format", "json").stdout)
    # the twin's text is random bytes, not always valid UTF-8
    out = subprocess.run([doc["llama_binary"], "-m", doc["model_path"], "-p", "hello", "-n", "8", "--ignore-eos"],
                         capture_output=True, text=True, errors="replace", timeout=HANG_S)
    assert out.returncode == 0
    assert "8 runs" in out.stderr or "/     7 runs" in out.stderr  # llama_print_timings counts the tokens


def test_second_bootstrap_changes_nothing_and_is_fast(bootstrapped):
    root, _, _ = bootstrapped
    ledger = (root / "build" / "ledger.json").read_text()
    res = eb(root, "bootstrap", "--twin", "tiny")
    assert res.returncode == 0
    assert "nothing to do" in res.stdout
    assert (root / "build" / "ledger.json").read_text() == ledger


def test_forced_git_without_a_route_names_the_fallback_and_marks_nothing_done(tmp_path):
    res = eb(tmp_path, "bootstrap", "--llama-source", "git")
    assert res.returncode == 1
    assert "fix: edgebench bootstrap --llama-source pypi" in res.stderr
    assert not (tmp_path / "build" / "llama.cpp").exists()
    ledger = tmp_path / "build" / "ledger.json"
    assert not ledger.exists() or "llama-source" not in json.loads(ledger.read_text())["steps"]


def test_model_source_download_offline_names_the_twin_option(bootstrapped, tmp_path):
    root, _, _ = bootstrapped
    res = eb(root, "bootstrap", "--redo", "model", "--model-source", "download")
    assert res.returncode == 1
    assert "fix: --model-source twin" in res.stderr


def test_user_model_that_is_not_gguf_is_refused(bootstrapped, tmp_path):
    root, _, _ = bootstrapped
    bogus = tmp_path / "model.gguf"
    bogus.write_bytes(b"PK\x03\x04 not a model")
    res = eb(root, "bootstrap", "--model", str(bogus))
    assert res.returncode == 1
    assert "is not a GGUF model" in res.stderr and "fix: --model PATH" in res.stderr


def test_doctor_on_an_empty_checkout_says_what_to_run(tmp_path):
    res = eb(tmp_path, "doctor")
    assert res.returncode == 1  # a script can tell that a run would fail
    assert "llama.cpp main not built: make bootstrap" in res.stdout
    assert "no model: make bootstrap" in res.stdout
