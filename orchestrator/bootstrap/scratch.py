"""A scratch host build of llama.cpp a33e6a0, the Llama vocabulary and a small twin (2 layers),
made by the same steps `edgebench bootstrap` runs and kept in the per-user cache: what
`edgebench nano-check` compares the emulated Nano against, and what the test suite runs on.
It never touches the checkout's build/."""

from __future__ import annotations

from pathlib import Path

from orchestrator import paths
from orchestrator.bootstrap import llama_current, twin
from orchestrator.bootstrap.build import RECIPE, BuildLlama
from orchestrator.bootstrap.ledger import Ledger
from orchestrator.bootstrap.llama_source import LlamaSource
from orchestrator.bootstrap.model import find_vocab
from orchestrator.bootstrap.patch import ApplyPatch
from orchestrator.bootstrap.steps import Context, Options, run_steps


def _test_root() -> Path:
    # one folder per build recipe: worktrees on different recipes never rebuild each other's
    return paths.cache_dir() / f"test-build-r{RECIPE}"


def _lock(root: Path | None = None):
    from filelock import FileLock

    root = root or _test_root()
    root.mkdir(parents=True, exist_ok=True)
    return FileLock(str(root / ".lock"))


def ensure_llama_build() -> Path:
    from orchestrator import sysinfo

    root = _test_root()
    with _lock():
        opts = Options(root=root, cache=paths.cache_dir(), llama_source="pypi", profile="host")
        ctx = Context(opts, Ledger(paths.ledger_path(root)), sysinfo.detect(root), log=lambda s: None)
        run_steps([LlamaSource(), ApplyPatch(), BuildLlama()], ctx)
        return opts.llama_dir


def ensure_llama_current_build() -> Path:
    """Today's llama.cpp (step llama-current), built once per recipe into the cache: the folder
    of llama-completion, llama-server and llama-tokenize."""
    from orchestrator import sysinfo

    root = paths.cache_dir() / f"test-build-current-r{llama_current.RECIPE}"
    with _lock(root):
        opts = Options(root=root, cache=paths.cache_dir(), profile="host")
        ctx = Context(opts, Ledger(paths.ledger_path(root)), sysinfo.detect(root), log=lambda s: None)
        run_steps([llama_current.LlamaCurrent()], ctx)
        return llama_current.bin_dir(opts.build)


def ensure_vocab() -> Path:
    with _lock():
        return find_vocab(_test_root() / "build" / "llama.cpp", paths.cache_dir(), log=lambda s: None)


def ensure_tiny_twin(llama_dir: Path, vocab: Path) -> Path:
    out = _test_root() / "models" / f"tiny-twin-{twin.TINY.label()}.gguf"
    with _lock():
        if not out.is_file():
            twin.synthesize(twin.TINY, vocab, Path(llama_dir) / "quantize", out, seed=0, log=lambda s: None)
    return out
