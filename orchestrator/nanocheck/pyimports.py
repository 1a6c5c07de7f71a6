"""Check 3: the Python stack on ARMv8.0. Debian's arm64 CPython 3.11 unpacked into a folder
and run under `qemu-aarch64-static -cpu cortex-a57 -L` that folder; the aarch64 wheels a board
would install for edgebench and its `report` and `twin` extras; each distribution imported (and the
compiled ones exercised) in a fresh process: ok, SIGILL, or the error."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from orchestrator import paths
from orchestrator.errors import UserError
from orchestrator.nanocheck import common
from orchestrator.nanocheck.aarch64 import QEMU_CPU

SUITE = "bookworm"  # its python3.11 matches the board's (uv's) CPython 3.11, and the cp311 wheels
MIRROR = "http://deb.debian.org/debian"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# python3.11 and the shared libraries it and its stdlib extension modules load
DEBS = ("python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib", "libc6", "libgcc-s1", "libstdc++6",
        "zlib1g", "libexpat1", "libssl3", "libffi8", "libbz2-1.0", "liblzma5", "libcrypt1", "libdb5.3", "libgdbm6",
        "libncursesw6", "libtinfo6", "libnsl2", "libtirpc3", "libreadline8", "libsqlite3-0", "libuuid1",
        "libgssapi-krb5-2", "libkrb5-3", "libk5crypto3", "libkrb5support0", "libcom-err2", "libkeyutils1",
        "libzstd1")
# The Nano's L4T R32 is Ubuntu 18.04, glibc 2.27: pip there takes no wheel tagged for a newer glibc.
BOARD_GLIBC_MINOR = 27
# what a board installs besides edgebench's own requirements (tools/ensure-venv.sh on a Jetson)
EXTRAS = ("report", "twin")
# Beyond the import, a little real work for the compiled packages (SIMD paths run on first use).
EXERCISE = {
    "numpy": "a = numpy.random.default_rng(0).random((64, 64)); assert (a @ a).shape == (64, 64)",
    "polars": "df = polars.DataFrame({'a': [1, 2, 3], 'b': ['x', 'y', 'x']}); "
              "assert df.group_by('b').agg(polars.col('a').sum()).sort('b')['a'].to_list() == [4, 2]",
    "pandas": "assert pandas.DataFrame({'a': [1, 2, 3], 'b': [1, 1, 2]}).groupby('b')['a'].sum().tolist() == [3, 3]",
    "scipy": "import scipy.linalg, numpy; assert abs(scipy.linalg.det(numpy.eye(3) * 2) - 8) < 1e-9",
    "matplotlib": "matplotlib.use('Agg'); import matplotlib.pyplot as plt, io; f = plt.figure(); "
                  "plt.plot([1, 2], [2, 1]); b = io.BytesIO(); f.savefig(b, format='png'); assert b.getvalue()",
    "plotnine": "import io, pandas as pd; b = io.BytesIO(); (plotnine.ggplot(pd.DataFrame({'x': [1, 2], 'y': [2, 1]}),"
                " plotnine.aes('x', 'y')) + plotnine.geom_line()).save(b, format='png', verbose=False); "
                "assert b.getvalue()",
    "psutil": "assert psutil.Process().memory_info().rss > 0 and psutil.cpu_count()",
    "yaml": "assert yaml.load('a: [1, 2]', Loader=yaml.CSafeLoader) == {'a': [1, 2]}",
    "markupsafe": "assert str(markupsafe.escape('<b>')) == '&lt;b&gt;'",
}


def _apt_options(state: Path) -> list[str]:
    return [f"-oDir::State={state}", f"-oDir::State::Lists={state / 'lists'}",
            f"-oDir::State::status={state / 'status'}",
            f"-oDir::Cache={state}", f"-oDir::Etc::SourceList={state / 'sources.list'}",
            f"-oDir::Etc::SourceParts={state / 'parts'}", "-oAPT::Architecture=arm64", "-oAPT::Architectures::=arm64",
            "-oDebug::NoLocking=1",
            # as root, apt would hand the download to user _apt, who cannot write into our folders
            *(["-oAPT::Sandbox::User=root"] if os.geteuid() == 0 else [])]


def arm64_python(root: Path, log) -> Path:
    """Debian's arm64 python3.11 and its libraries unpacked into `root`, from an apt state of our
    own (the host's dpkg architectures and package lists stay as they are); the .debs are cached."""
    state = paths.cache_dir() / "nano-check" / f"apt-arm64-{SUITE}"
    debs = state / "debs"
    for d in (state / "lists" / "partial", state / "parts", debs):
        d.mkdir(parents=True, exist_ok=True)
    (state / "status").touch()
    opts = f"[arch=arm64 signed-by={KEYRING}]"
    (state / "sources.list").write_text(f"deb {opts} {MIRROR} {SUITE} main\n"
                                        f"deb {opts} {MIRROR}-security {SUITE}-security main\n")
    have = {p.name.split("_")[0] for p in debs.glob("*.deb")}
    if not set(DEBS) <= have:
        log(f"python: downloading Debian {SUITE}'s arm64 python3.11 ({len(DEBS)} packages)")
        opts = _apt_options(state)
        for argv in (["apt-get", *opts, "-qq", "update"], ["apt-get", *opts, "-qq", "download", *DEBS]):
            proc = common.run(argv, timeout=900, cwd=str(debs))
            if proc.returncode != 0:
                raise UserError(f"`{' '.join(argv[:1] + argv[-3:])}` failed: {proc.stderr.strip()[-800:]}",
                                fix=f"check that {MIRROR} is reachable, then rerun `make nano-check`")
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for deb in sorted(debs.glob("*.deb")):
        common.run(["dpkg-deb", "-x", str(deb), str(root)]).check_returncode()
    return root / "usr" / "bin" / "python3.11"


def board_requirements(extras: tuple[str, ...] = EXTRAS) -> list[str]:
    """edgebench's install_requires and the extras', with the markers of an aarch64 Linux CPython 3.11."""
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pip vendors it; the report stack brings it too
        from pip._vendor.packaging.requirements import Requirement
    env = {"platform_machine": "aarch64", "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
           "python_version": "3.11", "python_full_version": "3.11.2", "implementation_name": "cpython",
           "platform_python_implementation": "CPython"}
    out = []
    for text in importlib.metadata.requires("edgebench") or []:
        req = Requirement(text)
        if req.marker is None or any(req.marker.evaluate({**env, "extra": e}) for e in extras):
            out.append(f"{req.name}{req.specifier}")
    return out


def install_wheels(site: Path, requirements: list[str], log) -> None:
    log(f"python: aarch64 cp311 wheels for {', '.join(requirements)}")
    shutil.rmtree(site, ignore_errors=True)
    platforms = ["manylinux2014_aarch64", *(f"manylinux_2_{m}_aarch64" for m in range(17, BOARD_GLIBC_MINOR + 1))]
    argv = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-warn-conflicts",
            "--target", str(site), "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
            "--abi", "cp311", *(a for p in platforms for a in ("--platform", p)), *requirements]
    proc = common.run(argv, timeout=1800)
    if proc.returncode != 0:
        raise UserError(f"pip could not fetch the aarch64 wheels: {proc.stderr.strip()[-1500:]}",
                        fix="check that PyPI is reachable, then rerun `make nano-check`")


def distributions(site: Path) -> list[tuple[str, str, str]]:
    """(distribution, version, module to import) for each distribution pip put in `site`."""
    out = []
    for info in sorted(site.glob("*.dist-info")):
        meta = importlib.metadata.PathDistribution(info)
        top = info / "top_level.txt"
        names = top.read_text().split() if top.is_file() else []
        if not names:
            record = (info / "RECORD").read_text() if (info / "RECORD").is_file() else ""
            for line in record.splitlines():
                first = line.split(",")[0].split("/")[0]
                if first.endswith(".dist-info") or first.endswith(".libs") or first in ("..", "bin", "__pycache__"):
                    continue
                name = re.sub(r"(\.cpython-.*|\.abi3)?\.(py|so)$", "", first)
                if name.isidentifier() and name not in names:
                    names.append(name)
        public = [n for n in names if not n.startswith("_")] or names
        if public:
            out.append((meta.metadata["Name"], meta.version, public[0]))
    return out


def classify(rc: int, stderr: str) -> tuple[str, str | None]:
    if rc == 0:
        return "ok", None
    if rc == -signal.SIGILL:
        return "SIGILL", "killed by SIGILL: an instruction the Cortex-A57 (ARMv8.0) does not have"
    if rc < 0:
        return "error", f"killed by signal {-rc} ({signal.Signals(-rc).name})"
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    return "error", lines[-1][-300:] if lines else f"exit status {rc}"


def import_one(python: Path, root: Path, site: Path, module: str, work: Path) -> dict:
    code = f"import {module}"
    if module in EXERCISE:
        code += f"\n{EXERCISE[module]}"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work), "PYTHONPATH": str(site),
           "PYTHONNOUSERSITE": "1", "LC_ALL": "C.UTF-8", "MPLBACKEND": "Agg", "MPLCONFIGDIR": str(work / "mpl")}
    argv = [shutil.which(common.QEMU) or common.QEMU, "-cpu", QEMU_CPU, "-L", str(root), str(python), "-c", code]
    try:
        proc = common.run(argv, timeout=600, env=env, cwd=str(work))
    except subprocess.TimeoutExpired:
        return {"status": "error", "error": "no answer within 600 s", "exercised": module in EXERCISE}
    return outcome(module, proc.returncode, proc.stderr)


def outcome(module: str, rc: int, stderr: str) -> dict:
    """One import's entry in report.json's `imports` (beside the distribution's version and module)."""
    status, error = classify(rc, stderr)
    return {"status": status, "exercised": module in EXERCISE, **({"error": error} if error else {})}


def imports_record(dists: list[tuple[str, str, str]], results: list[dict]) -> dict:
    """report.json's `imports`: distribution -> version, module, and how its import went."""
    return {name: {"version": ver, "module": mod, **res} for (name, ver, mod), res in zip(dists, results, strict=True)}


def check(work: Path, log) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    (work / "mpl").mkdir(exist_ok=True)
    root = work / "root"
    python = arm64_python(root, log)
    version = common.run([*_qemu(root), str(python), "-c", "import sys; print(sys.version.split()[0])"])
    site = work / "site"
    reqs = board_requirements()
    install_wheels(site, reqs, log)
    dists = distributions(site)
    log(f"python: importing {len(dists)} distributions under qemu -cpu {QEMU_CPU}")
    with ThreadPoolExecutor(max_workers=common.JOBS) as pool:
        results = list(pool.map(lambda d: import_one(python, root, site, d[2], work), dists))
    imports = imports_record(dists, results)
    return {"python_aarch64": version.stdout.strip() or None, "python_requirements": reqs,
            "wheel_platforms_max_glibc": f"2.{BOARD_GLIBC_MINOR}", "imports": imports}


def _qemu(root: Path) -> list[str]:
    return [shutil.which(common.QEMU) or common.QEMU, "-cpu", QEMU_CPU, "-L", str(root)]
