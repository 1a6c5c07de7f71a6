"""A simulated Jetson Nano for the bootstrap tests: a fake root (EDGEBENCH_SYSROOT) with the
files a board has, fake board programs on PATH (nvpmodel, jetson_release, tegrastats, nvcc,
sudo, systemctl, usermod, id), a fake system Python for jetson-stats, and a tiny fake GCC
source tarball whose configure and Makefile record how they were called and fail on demand
(FAKE_GCC_FAIL=prerequisites|configure|build|install). Nothing here runs anything as root or
touches the real system: the fake sudo only runs other fakes, and only records the rest."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import stat
import tarfile
import threading
from dataclasses import dataclass
from pathlib import Path

NANO_MODEL = "NVIDIA Jetson Nano Developer Kit"
NANO_RELEASE = "# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64, DATE: Sat Feb 19 2022"
ORIN_MODEL = "NVIDIA Jetson AGX Orin Developer Kit"
ORIN_RELEASE = "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: Tue Aug 1 2023"
NANO_MEMINFO = "MemTotal:        4059712 kB\nMemFree:          200000 kB\nMemAvailable:    3000000 kB\n" \
               "SwapTotal:       2029852 kB\nSwapFree:        2029852 kB\n"
BIG_MEMINFO = "MemTotal:        4059712 kB\nMemAvailable:    3000000 kB\nSwapTotal:       6291456 kB\n"
UNREACHABLE = "http://127.0.0.1:9/"


def write_exe(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


FAKE_NVCC = r"""#!/bin/sh
# fake nvcc: `--version`, or `-o OUT SRC` writes OUT, a probe that prints $FAKE_CC (5.3 by default)
echo "nvcc $*" >> "$FAKE_CALLS"
if [ "$1" = "--version" ]; then echo "Cuda compilation tools, release 10.2, V10.2.300"; exit 0; fi
out=""
while [ $# -gt 0 ]; do [ "$1" = "-o" ] && { out=$2; shift; }; shift; done
[ -n "$out" ] || { echo "fake nvcc: no -o" >&2; exit 1; }
printf '#!/bin/sh\necho "${FAKE_CC:-5.3}"\n' > "$out"
chmod +x "$out"
"""

FAKE_SUDO = r"""#!/bin/sh
# fake sudo: -n only; refuses when FAKE_SUDO_DENY is set; runs only fakes, records everything
[ "$1" = "-n" ] || { echo "fake sudo: would prompt" >&2; exit 1; }
shift
[ "$1" = "-H" ] && shift
echo "sudo $*" >> "$FAKE_CALLS"
if [ -n "$FAKE_SUDO_DENY" ]; then echo "sudo: a password is required" >&2; exit 1; fi
case "$1" in
  "$FAKE_ROOT"/*) exec "$@" ;;
esac
if [ -x "$FAKE_BIN/$1" ]; then exec "$FAKE_BIN/$@"; fi
exit 0
"""

FAKE_NVPMODEL = r"""#!/bin/sh
echo "nvpmodel $*" >> "$FAKE_CALLS"
state="$FAKE_ROOT/state/nvpmodel"
if [ "$1" = "-q" ]; then
  if [ "$(cat "$state" 2>/dev/null || echo 1)" = 0 ]; then printf 'NV Power Mode: MAXN\n0\n'
  else printf 'NV Power Mode: 5W\n1\n'; fi
  exit 0
fi
if [ "$1" = "-m" ]; then echo "$2" > "$state"; exit 0; fi
exit 1
"""

FAKE_SYSTEMCTL = r"""#!/bin/sh
echo "systemctl $*" >> "$FAKE_CALLS"
[ "$1" = "is-active" ] && echo "${FAKE_JTOP_STATE:-active}"
exit 0
"""

FAKE_ID = r"""#!/bin/sh
# fake id -nG USER: the groups, with jtop once usermod added it
if [ -f "$FAKE_ROOT/state/in-jtop" ]; then echo "$3 adm sudo video jtop"; else echo "$3 adm sudo video"; fi
"""

FAKE_USERMOD = r"""#!/bin/sh
echo "usermod $*" >> "$FAKE_CALLS"
touch "$FAKE_ROOT/state/in-jtop"
"""

# A Python that pip-installs and pip-shows jetson-stats into a state file named after itself.
FAKE_PYTHON = r"""#!/bin/sh
me=$(basename "$0")
echo "$me $*" >> "$FAKE_CALLS"
state="$FAKE_ROOT/state/$me-jetson-stats"
if [ "$1 $2 $3" = "-m pip --version" ]; then [ -z "$FAKE_NO_PIP" ]; exit; fi
if [ "$1 $2 $3" = "-m pip install" ]; then echo "$4" | sed 's/.*==//' > "$state"; exit 0; fi
if [ "$1 $2 $3" = "-m pip show" ]; then
  [ -f "$state" ] || exit 1
  echo "Name: jetson-stats"; echo "Version: $(cat "$state")"; exit 0
fi
exit 1
"""

SIMPLE = {
    "jetson_release": '#!/bin/sh\necho " - Model: NVIDIA Jetson Nano Developer Kit"\necho " - Jetpack 4.6.1"\n',
    "tegrastats": "#!/bin/sh\necho 'RAM 613/3964MB (lfb 634x4MB) SWAP 0/1982MB (cached 0MB) CPU [2%@102]'\n",
}

# The fake GCC source tree. configure writes a Makefile whose targets record and can fail.
FAKE_PREREQS = r"""#!/bin/sh
echo "download_prerequisites $*" >> "$FAKE_GCC_RECORD"
[ "$FAKE_GCC_FAIL" = prerequisites ] && { echo "fake: cannot fetch gmp" >&2; exit 1; }
exit 0
"""

FAKE_CONFIGURE = r"""#!/bin/sh
echo "configure $*" >> "$FAKE_GCC_RECORD"
[ "$FAKE_GCC_FAIL" = configure ] && { echo "configure: error: fake failure" >&2; exit 1; }
prefix=""
for a in "$@"; do case "$a" in --prefix=*) prefix=${a#--prefix=} ;; esac; done
cat > Makefile <<EOF
all:
	@echo "make all \$(MAKEFLAGS)" >> "\$\$FAKE_GCC_RECORD"
	@sleep \$\${FAKE_GCC_SLEEP:-0}
	@test "\$\$FAKE_GCC_FAIL" != build || { echo "cc1plus: out of memory (fake)"; exit 1; }
install:
	@echo "make install" >> "\$\$FAKE_GCC_RECORD"
	@test "\$\$FAKE_GCC_FAIL" != install
	mkdir -p $prefix/bin $prefix/lib64
	printf '#!/bin/sh\necho "gcc (GCC) 8.5.0"\n' > $prefix/bin/gcc
	printf '#!/bin/sh\necho "g++ (GCC) 8.5.0"\n' > $prefix/bin/g++
	chmod +x $prefix/bin/gcc $prefix/bin/g++
EOF
"""


def fake_gcc_tarball(dest: Path) -> Path:
    """gcc-8.5.0.tar.xz holding gcc-8.5.0/{configure,contrib/download_prerequisites}."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w:xz") as tar:
        for name, text in (("configure", FAKE_CONFIGURE), ("contrib/download_prerequisites", FAKE_PREREQS)):
            data = text.encode()
            info = tarfile.TarInfo(f"gcc-8.5.0/{name}")
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return dest


@dataclass
class Board:
    root: Path  # EDGEBENCH_ROOT: the project's root (build/ goes there)
    sysroot: Path  # EDGEBENCH_SYSROOT
    bin: Path  # fake programs, first on PATH
    calls: Path  # what the fakes were asked to do
    gcc_record: Path  # what the fake GCC source tree was asked to do
    gcc_tarball: Path

    def call_lines(self) -> list[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []

    def gcc_lines(self) -> list[str]:
        return self.gcc_record.read_text().splitlines() if self.gcc_record.exists() else []

    def count(self, prefix: str) -> int:
        return sum(1 for line in self.gcc_lines() if line.startswith(prefix))


class Listener:
    """A local TCP port that accepts connections: a download host that 'answers'."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.close()

    def close(self):
        self.sock.close()


def make_board(tmp_path: Path, monkeypatch, model: str = NANO_MODEL, release: str = NANO_RELEASE,
               meminfo: str = BIG_MEMINFO, reachable_url: str = UNREACHABLE) -> Board:
    from orchestrator.bootstrap import gcc, jetson_stats, python_env

    root, sysroot, fbin = tmp_path / "project", tmp_path / "sysroot", tmp_path / "fakebin"
    for d in (root, sysroot / "state", fbin):
        d.mkdir(parents=True, exist_ok=True)
    (sysroot / "proc/device-tree").mkdir(parents=True)
    (sysroot / "proc/device-tree/model").write_bytes(model.encode() + b"\x00")
    (sysroot / "etc").mkdir()
    (sysroot / "etc/nv_tegra_release").write_text(release + "\n")
    (sysroot / "etc/nvpmodel.conf").write_text("< POWER_MODEL ID=0 NAME=MAXN >\n< POWER_MODEL ID=1 NAME=5W >\n")
    (sysroot / "proc/meminfo").write_text(meminfo)
    write_exe(sysroot / "usr/local/cuda/bin/nvcc", FAKE_NVCC)
    for name, text in (("sudo", FAKE_SUDO), ("nvpmodel", FAKE_NVPMODEL), ("systemctl", FAKE_SYSTEMCTL),
                       ("id", FAKE_ID), ("usermod", FAKE_USERMOD), *SIMPLE.items()):
        write_exe(fbin / name, text)
    system_python = write_exe(sysroot / "usr/bin/python3", FAKE_PYTHON)
    env_python = write_exe(sysroot / "venv/bin/python", FAKE_PYTHON)
    tarball = fake_gcc_tarball(tmp_path / "gcc-src" / "gcc-8.5.0.tar.xz")
    board = Board(root, sysroot, fbin, tmp_path / "calls.log", tmp_path / "gcc-record.log", tarball)

    monkeypatch.setenv("EDGEBENCH_ROOT", str(root))
    monkeypatch.setenv("EDGEBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("EDGEBENCH_SYSROOT", str(sysroot))
    monkeypatch.setenv("EDGEBENCH_SYSTEM_PYTHON", str(system_python))
    monkeypatch.setenv("PATH", f"{fbin}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ROOT", str(sysroot))
    monkeypatch.setenv("FAKE_BIN", str(fbin))
    monkeypatch.setenv("FAKE_CALLS", str(board.calls))
    monkeypatch.setenv("FAKE_GCC_RECORD", str(board.gcc_record))
    for var in ("FAKE_GCC_FAIL", "FAKE_SUDO_DENY", "FAKE_CC", "FAKE_GCC_SLEEP", "FAKE_NO_PIP", "EDGEBENCH_CUDA_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(gcc, "GCC_URL", tarball.as_uri())
    monkeypatch.setattr(gcc, "GCC_SHA256", hashlib.sha256(tarball.read_bytes()).hexdigest())
    monkeypatch.setattr(gcc, "PREREQ_URL", reachable_url)
    monkeypatch.setattr(gcc, "POLL_S", 0.02)
    monkeypatch.setattr(jetson_stats, "env_python", lambda: str(env_python))
    monkeypatch.setenv("EDGEBENCH_PYPI_INDEX", reachable_url)
    monkeypatch.setattr("orchestrator.bootstrap.model.MODEL_URL", UNREACHABLE)
    # the project's own environment is the one running these tests: never pip-install into it
    monkeypatch.setattr(python_env.PythonEnv, "run", lambda self, ctx: {"python": "simulated"})
    # llama.cpp from a folder: no GitHub, no PyPI
    monkeypatch.setattr("orchestrator.bootstrap.llama_source.GIT_URL", UNREACHABLE)
    return board


def context(board: Board, profile: str = "jetson-nano", lines: list | None = None, **options):
    """A bootstrap Context for the board, as the CLI builds it; log lines go into `lines`."""
    from orchestrator import paths, sysinfo
    from orchestrator.bootstrap.ledger import Ledger
    from orchestrator.bootstrap.steps import Context, Options

    opts = Options(root=board.root, cache=paths.cache_dir(), profile=profile, **options)
    sink = lines if lines is not None else []
    return Context(opts, Ledger(board.root / "build" / "ledger.json"), sysinfo.detect(board.root), log=sink.append)
