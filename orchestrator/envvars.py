"""Every EDGEBENCH_* environment variable edgebench reads, in one table: its default and what
it changes. docs/environment.md is generated from it (a test keeps them equal, and fails when
the package or tools/ read a variable this table lacks); `edgebench doctor` shows those set."""

from __future__ import annotations

import contextlib
import os

# (name, default, meaning); grouped as a reader looks for them
VARIABLES: tuple[tuple[str, str, str], ...] = (
    # where things are
    ("EDGEBENCH_ROOT", "the checkout edgebench runs from, else the working directory",
     "the project root: `build/` (llama.cpp, models, the ledger) and `reports/` live under it"),
    ("EDGEBENCH_CACHE", "`$XDG_CACHE_HOME/edgebench`, else `~/.cache/edgebench`",
     "downloads and builds shared by every clone on the machine (sdists, the vocabulary, twins, the test build)"),
    ("EDGEBENCH_SYSROOT", "`/`",
     "where board files are read (`/proc`, `/sys`, `/etc/nv_tegra_release`); tests point it at a fake board"),
    ("EDGEBENCH_LOCK", "`/tmp/edgebench-measure.lock`",
     "the machine-wide measurement lock: one measuring command at a time"),
    ("EDGEBENCH_LOCK_LENT", "unset (set by edgebench itself)",
     "the PID of a measuring parent (`bench`) that lends its lock to the `edgebench run` it starts"),
    # downloads
    ("EDGEBENCH_CONNECT_TIMEOUT", "`5`", "seconds to wait for a host (or the proxy) to accept a connection"),
    ("EDGEBENCH_READ_TIMEOUT", "`30`", "seconds a download may wait for its next bytes before it retries"),
    ("EDGEBENCH_DOWNLOAD_TRIES", "`5`", "tries per download before it fails (transient errors only)"),
    ("EDGEBENCH_DOWNLOAD_BACKOFF", "`1`", "seconds before the first retry; doubled for each next one (at most 60)"),
    ("EDGEBENCH_PYPI_INDEX", "`$PIP_INDEX_URL`, else `https://pypi.org/simple`",
     "the package index (PEP 691 JSON) the llama.cpp and vocabulary sdists come from"),
    ("EDGEBENCH_LLAMA_GIT_URL", "`https://github.com/ggerganov/llama.cpp`", "where `--llama-source git` clones from"),
    ("EDGEBENCH_MODEL_URL", "TinyLlama-1.1B-Chat-v1.0 Q5_K_M on Hugging Face at a pinned revision",
     "where bootstrap downloads the model (a mirror)"),
    ("EDGEBENCH_MODEL_SHA256", "the pinned file's digest (and size)",
     "the digest a mirror's model must have; `skip` checks its GGUF metadata only"),
    ("EDGEBENCH_DATASET_BASE_URL", "each dataset's official URL",
     "`workloads build` fetches `BASE/<dataset>/<file>` instead (a mirror)"),
    # the board and its tools
    ("EDGEBENCH_CUDA_HOME", "`/usr/local/cuda`, else where `nvcc` on PATH lives", "the CUDA toolkit a build uses"),
    ("EDGEBENCH_SYSTEM_PYTHON", "`/usr/bin/python3`", "the board's own Python, which runs the jtop service"),
    ("EDGEBENCH_TEGRASTATS", "`tegrastats` on PATH", "the tegrastats program the sampler starts"),
    ("EDGEBENCH_NVML_DEVICE", "`0`", "the NVML index of the GPU the `nvml` sampler reads"),
    # a lab of boards (`edgebench fleet`)
    ("EDGEBENCH_ANSIBLE_PLAYBOOK", "`ansible-playbook` beside edgebench's Python, else on PATH",
     "the ansible-playbook `edgebench fleet` runs (an Ansible installed apart: pipx, Debian's `ansible`)"),
    # tools/ensure-venv.sh (`make venv`, `make bootstrap`)
    ("EDGEBENCH_PYTHON", "the newest `python3.1x` >= 3.10 on PATH", "the Python `.venv` is made with"),
    ("EDGEBENCH_UV", "`uv` on PATH, `~/.local/bin/uv`, `~/.cargo/bin/uv`",
     "the uv that installs a standalone CPython where the machine has no Python >= 3.10"),
    ("EDGEBENCH_UV_PYTHON", "`3.11`", "the CPython version uv installs then"),
)

# read by the test suite only (tests/): shortcuts for developers, not settings of edgebench
TEST_VARIABLES: tuple[tuple[str, str, str], ...] = (
    ("EDGEBENCH_TEST_LLAMA_DIR", "the scratch build in the cache", "a folder with a built `main`, `tokenize`, "
     "`quantize` of a33e6a0 the tests use instead of building one"),
    ("EDGEBENCH_TEST_LLAMA_CURRENT_DIR", "the scratch build in the cache", "a folder with today's "
     "`llama-completion`, `llama-server`, `llama-tokenize` (bootstrap step llama-current) the tests use instead "
     "of building them"),
    ("EDGEBENCH_TEST_VOCAB", "the vocabulary in the cache", "the Llama vocabulary GGUF the tests use"),
    ("EDGEBENCH_NANO_CHECK_REPORT", "a nano-check run in the test", "a `report.json` made earlier by "
     "`make nano-check`, which the nano-check tests read instead of running the check"),
    ("EDGEBENCH_DATASETS", "`shared/datasets` beside or inside the checkout",
     "local copies of the five datasets for the `workloads build` tests"),
    ("EDGEBENCH_SCREENSHOTS", "unset", "a folder the browser tests copy their page screenshots into"),
    ("EDGEBENCH_TEST_NEED_SSHD", "unset (`.ci/run` sets 1)", "`1`: a fleet test that cannot start its loopback "
     "sshd (not root, no OpenSSH) fails instead of skipping"),
    ("EDGEBENCH_TEST_NEED_TMPFS", "unset (`.ci/run` sets 1)", "`1`: a full-disk test that cannot mount its small "
     "tmpfs (not root, no mount) fails instead of skipping"),
)

NAMES = {name for name, _, _ in VARIABLES + TEST_VARIABLES}


def markdown() -> str:
    def table(rows) -> list[str]:
        return ["| variable | default | what it changes |", "|---|---|---|",
                *(f"| `{n}` | {d} | {m} |" for n, d, m in rows)]

    return "\n".join([
        "# Environment variables",
        "",
        "Every `EDGEBENCH_*` variable edgebench reads. Generated from `orchestrator/envvars.py`; "
        "`edgebench doctor` lists the ones set. Proxies are the standard `https_proxy`, `http_proxy` "
        "and `no_proxy` (either case): downloads and their reachability checks both use them.",
        "",
        *table(VARIABLES),
        "",
        "## For the test suite",
        "",
        *table(TEST_VARIABLES),
        "",
    ])


def set_now(environ=None) -> list[tuple[str, str, bool]]:
    """(name, value, known) of every EDGEBENCH_* variable set; `known` False flags a misspelling."""
    environ = os.environ if environ is None else environ
    return sorted((k, v, k in NAMES) for k, v in environ.items() if k.startswith("EDGEBENCH_"))


@contextlib.contextmanager
def environ(**values: str):
    """These environment variables set while the block runs, then put back as they were."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
