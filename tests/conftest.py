"""Shared fixtures: the real llama.cpp binaries, the real Llama vocabulary, a small twin.

They are built once per machine through the same code `edgebench bootstrap` uses, cached
under the edgebench cache, so a second test run builds nothing. EDGEBENCH_TEST_LLAMA_DIR and
EDGEBENCH_TEST_VOCAB point at ready-made ones instead (a developer's shortcut)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# A test that asks for one of these builds or runs the real llama.cpp: it is `slow`
# (`pytest -m "not slow"` is the fast tier).
REAL_LLAMA_FIXTURES = {"llama_bin_dir", "vocab_gguf", "tiny_model", "llama_current_dir"}
# Rendering figures with plotnine and loading pages in Chromium takes seconds per test.
SLOW_MODULES = {"test_report.py", "test_report_browser.py", "test_report_answer.py"}


def pytest_configure(config):
    """A lock of this test session's own, before any fixture runs (module fixtures start runs
    before the per-test lock below applies): a test run never collides with another checkout's."""
    import tempfile

    os.environ["EDGEBENCH_LOCK"] = os.path.join(tempfile.mkdtemp(prefix="edgebench-test-lock-"), "measure.lock")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if REAL_LLAMA_FIXTURES & set(getattr(item, "fixturenames", ())) or item.path.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def llama_bin_dir() -> Path:
    """A folder holding the built `main`, `tokenize`, `quantize` of llama.cpp a33e6a0."""
    env = os.environ.get("EDGEBENCH_TEST_LLAMA_DIR")
    if env:
        return Path(env)
    from orchestrator.bootstrap import scratch as support

    return support.ensure_llama_build()


@pytest.fixture(scope="session")
def llama_current_dir() -> Path:
    """A folder holding today's llama.cpp `llama-completion`, `llama-server`, `llama-tokenize`
    (bootstrap step llama-current, CPU), and the shared libraries they load."""
    env = os.environ.get("EDGEBENCH_TEST_LLAMA_CURRENT_DIR")
    if env:
        return Path(env)
    from orchestrator.bootstrap import scratch as support

    return support.ensure_llama_current_build()


@pytest.fixture(scope="session")
def vocab_gguf() -> Path:
    """The real 32000-token Llama SentencePiece vocabulary (vocab-only GGUF)."""
    env = os.environ.get("EDGEBENCH_TEST_VOCAB")
    if env:
        return Path(env)
    from orchestrator.bootstrap import scratch as support

    return support.ensure_vocab()


@pytest.fixture(scope="session")
def tiny_model(llama_bin_dir, vocab_gguf) -> Path:
    """A small timing twin: the real vocabulary, 2 layers, Q5_K_M, runs in well under a second."""
    from orchestrator.bootstrap import scratch as support

    return support.ensure_tiny_twin(llama_bin_dir, vocab_gguf)


@pytest.fixture
def isolated_root(tmp_path, monkeypatch) -> Path:
    """A project root of its own, so a test never writes into the checkout's build/ or reports/."""
    monkeypatch.setenv("EDGEBENCH_ROOT", str(tmp_path))
    return tmp_path


@pytest.fixture
def download_host():
    """A local TCP port that accepts connections: a download host that answers (no network)."""
    from jetson_board import Listener

    server = Listener()
    yield server.url
    server.close()


@pytest.fixture
def nano(tmp_path, monkeypatch, download_host):
    """A simulated Jetson Nano (tests/jetson_board.py): fake root, fake board programs on PATH,
    a fake GCC source tarball; every download URL answers locally or is unreachable."""
    from jetson_board import make_board

    return make_board(tmp_path, monkeypatch, reachable_url=download_host)


@pytest.fixture(autouse=True)
def own_measurement_lock(tmp_path, monkeypatch):
    """Each test measures under a lock of its own: tests (and other checkouts' test runs on the
    same machine) must not refuse each other through the machine-wide lock."""
    monkeypatch.setenv("EDGEBENCH_LOCK", str(tmp_path / "edgebench-measure.lock"))


@pytest.fixture(autouse=True)
def forget_fake_modules():
    """The stand-in jtop and pynvml modules (the recorded Nano's, tests/fakes/modules) must not
    outlive the test that imported them: a later in-process run would find them and sample a GPU
    that is not there."""
    yield
    import sys

    from orchestrator.sampling.recorded import modules_dir

    fakes = (str(Path(__file__).resolve().parent / "fakes"), str(modules_dir()))
    for name, mod in list(sys.modules.items()):
        if (getattr(mod, "__file__", None) or "").startswith(fakes):
            del sys.modules[name]
