"""Step: GCC 8.5.0 built from source into its own prefix (build/toolchain/gcc-8.5.0), never
over the system compiler. CUDA 10.2's nvcc refuses a host GCC newer than 8, and Ubuntu's
GCC 8.4 fails on `vld1q_s8_x4` in ggml-quants.c, hence 8.5 from source: 3 to 5 hours on a Nano.

The slow part runs detached from the terminal (its own session, so an SSH drop or Ctrl-C does
not stop it), logs to build/logs/gcc.log, and leaves a stamp after each phase. A rerun after a
failure starts again at the phase that failed; a rerun while it is still going re-attaches.
`--pack-gcc` writes the built prefix as a relocatable tarball; `--gcc-from TARBALL` installs
one on another board in minutes."""

from __future__ import annotations

import json
import os
import platform as _platform
import shlex
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

from orchestrator import fsutil, net
from orchestrator.bootstrap.steps import Command, Context, Step
from orchestrator.bootstrap.system import capture
from orchestrator.errors import UserError

GCC_VERSION = "8.5.0"
GCC_TARBALL = f"gcc-{GCC_VERSION}.tar.xz"
GCC_URL = f"https://ftp.gnu.org/gnu/gcc/gcc-{GCC_VERSION}/{GCC_TARBALL}"
# The published SHA-256 of gcc-8.5.0.tar.xz: the one place it is pinned.
GCC_SHA256 = "d308841a511bb830a6100397b0042db24ce11f642dab6ea6ee44842e5325ed50"
# Where contrib/download_prerequisites fetches gmp, mpfr, mpc and isl from.
PREREQ_URL = "https://gcc.gnu.org/pub/gcc/infrastructure/"
CONFIGURE_FLAGS = ("--enable-languages=c,c++", "--disable-multilib", "--enable-checking=release")
# The detached phases, in order; each leaves a stamp file of its name when it finished.
PHASES = ("prerequisites", "configured", "built", "installed")
GIB = 1 << 30
JOB_BYTES = int(1.5 * GIB)  # what one cc1plus of a GCC bootstrap can take at its peak
POLL_S = 10.0  # how often the attached bootstrap looks at the detached build
HEARTBEAT_S = 600.0  # how often it says that it is still waiting
MANIFEST = "EDGEBENCH-GCC.json"


def prefix(ctx: Context) -> Path:
    return ctx.options.build / "toolchain" / f"gcc-{GCC_VERSION}"


def work_dir(ctx: Context) -> Path:
    return ctx.options.build / f"gcc-{GCC_VERSION}-build"


def log_path(ctx: Context) -> Path:
    return ctx.options.logs_dir / "gcc.log"


def tarball_path(ctx: Context) -> Path:
    return ctx.options.cache / "downloads" / GCC_TARBALL


def gcc_bin(ctx: Context, tool: str = "gcc") -> Path:
    return prefix(ctx) / "bin" / tool


def jobs(platform: dict, asked: int | None = None) -> int:
    """`make -j` for the GCC build: one job per core, but no more than memory carries."""
    if asked:
        return asked
    cores = platform.get("cpu_count") or 1
    mem = platform.get("mem_total_bytes") or 2 * GIB
    return max(1, min(cores, int(mem // JOB_BYTES)))


def phases_done(ctx: Context) -> list[str]:
    stamps = work_dir(ctx) / "stamps"
    return [p for p in PHASES if (stamps / p).is_file()]


def first_missing_phase(ctx: Context) -> str | None:
    done = set(phases_done(ctx))
    return next((p for p in PHASES if p not in done), None)


def version_line(gcc: Path) -> str | None:
    rc, out = capture([str(gcc), "--version"], timeout=30)
    return out.splitlines()[0].strip() if rc == 0 and out else None


class Gcc(Step):
    name = "gcc"
    title = f"GCC {GCC_VERSION} in its own prefix (nvcc's host compiler; not the system's gcc)"

    def is_done(self, ctx: Context) -> bool:
        return (
            ctx.entry(self.name) is not None
            and os.access(gcc_bin(ctx, "gcc"), os.X_OK)
            and os.access(gcc_bin(ctx, "g++"), os.X_OK)
        )

    def building(self, ctx: Context) -> bool:
        """True when this run would compile GCC (not when it unpacks --gcc-from)."""
        return ctx.options.gcc_from is None

    def urls(self, ctx: Context) -> list[tuple[str, str]]:
        if not self.building(ctx):
            return []
        out = []
        if not tarball_path(ctx).is_file():
            out.append((GCC_URL, f"the GCC {GCC_VERSION} source tarball"))
        if "prerequisites" not in phases_done(ctx):
            out.append((PREREQ_URL, "GCC's prerequisites (gmp, mpfr, mpc, isl; contrib/download_prerequisites)"))
        return out

    # -- the plan -------------------------------------------------------------------------

    def commands(self, ctx: Context) -> list[Command]:
        pre = prefix(ctx)
        verify = [Command((str(pre / "bin" / "gcc"), "--version")), Command((str(pre / "bin" / "g++"), "--version"))]
        if not self.building(ctx):
            return [Command(("extract", str(ctx.options.gcc_from), str(pre))), *verify]
        work = work_dir(ctx)
        src, obj = work / "src", work / "obj"
        done = phases_done(ctx)
        note = f"done before, kept: {', '.join(done)}" if done else "none done yet"
        return [
            Command(("download", GCC_URL, f"sha256={GCC_SHA256}", str(tarball_path(ctx)))),
            Command(("tar", "-xJf", str(tarball_path(ctx)), "-C", str(src), "--strip-components=1")),
            Command((f"# the next four run detached (own session, nohup: an SSH drop does not stop them), "
                     f"log {log_path(ctx)}; a stamp per phase ({', '.join(PHASES)}) makes a rerun resume ({note})",)),
            *self._phase_commands(ctx, src, obj),
            *verify,
        ]

    def _phase_commands(self, ctx: Context, src: Path, obj: Path) -> list[Command]:
        return [
            Command(("./contrib/download_prerequisites",), cwd=str(src)),
            Command((str(src / "configure"), f"--prefix={prefix(ctx)}", *CONFIGURE_FLAGS), cwd=str(obj)),
            Command(("make", f"-j{jobs(ctx.platform, ctx.options.jobs)}"), cwd=str(obj)),
            Command(("make", "install"), cwd=str(obj)),
        ]

    # -- the run --------------------------------------------------------------------------

    def run(self, ctx: Context) -> dict:
        if not self.building(ctx):
            return install_packed(ctx, Path(ctx.options.gcc_from))
        work = work_dir(ctx)
        if self.name in ctx.options.force and not _running_pid(ctx):
            ctx.log(f"  --redo gcc: starting over (removing {work} and {prefix(ctx)})")
            shutil.rmtree(work, ignore_errors=True)
            shutil.rmtree(prefix(ctx), ignore_errors=True)
        (work / "stamps").mkdir(parents=True, exist_ok=True)
        ctx.options.logs_dir.mkdir(parents=True, exist_ok=True)
        self._fetch_and_extract(ctx)
        pid = _running_pid(ctx)
        if pid:
            ctx.log(f"  the GCC build is already running (pid {pid}); attaching to it (log: {log_path(ctx)})")
            child = None
        else:
            child = self._launch(ctx)
            pid = child.pid
        rc = _wait(ctx, pid, child)
        if rc != 0:
            phase = first_missing_phase(ctx) or "verify"
            tail = "\n".join(_tail(log_path(ctx), 20))
            raise UserError(
                f"the GCC {GCC_VERSION} build failed in phase '{phase}' (exit {rc}); "
                f"last lines of {log_path(ctx)}:\n{tail}",
                fix=f"fix the cause above, then rerun `make bootstrap`: it resumes at '{phase}' and keeps the "
                f"phases already done ({', '.join(phases_done(ctx)) or 'none'}); "
                "`edgebench bootstrap --redo gcc` starts the compiler over",
            )
        version = verify(ctx)
        # The build tree is ~5 GB on a small SD card; the stamps stay, so a rerun still knows it is done.
        for tree in ("src", "obj"):
            shutil.rmtree(work / tree, ignore_errors=True)
        ctx.log(f"  {version} installed in {prefix(ctx)}; removed its build tree (log kept: {log_path(ctx)})")
        return {
            "method": "source",
            "version": version,
            "prefix": str(prefix(ctx)),
            "tarball_sha256": GCC_SHA256,
            "configure_flags": list(CONFIGURE_FLAGS),
            "jobs": jobs(ctx.platform, ctx.options.jobs),
            "log": str(log_path(ctx)),
        }

    def _fetch_and_extract(self, ctx: Context) -> None:
        work = work_dir(ctx)
        stamp = work / "stamps" / "extracted"
        if stamp.is_file():
            return
        dest = tarball_path(ctx)
        try:
            net.download(GCC_URL, dest, sha256=GCC_SHA256, log=ctx.log)
        except net.Unreachable as exc:
            raise UserError(
                f"cannot download {GCC_TARBALL}: {exc}",
                fix="check the network, or install a compiler packed on another board: "
                "edgebench bootstrap --gcc-from gcc-8.5.0-*.tar.gz",
            ) from exc
        src = work / "src"
        shutil.rmtree(src, ignore_errors=True)
        src.mkdir(parents=True)
        ctx.log(f"  unpacking {dest.name} into {src}")
        fsutil.extract_tar(dest, src, strip=1)
        stamp.touch()

    def _launch(self, ctx: Context) -> subprocess.Popen:
        work = work_dir(ctx)
        script = work / "run.sh"
        script.write_text(_script(ctx, self._phase_commands(ctx, work / "src", work / "obj")))
        (work / "rc").unlink(missing_ok=True)
        resume = first_missing_phase(ctx)
        done = phases_done(ctx)
        ctx.log(
            f"  building GCC {GCC_VERSION} detached from this terminal"
            + (f", resuming at '{resume}' ({', '.join(done)} done before)" if done else "")
        )
        ctx.log(f"  log: {log_path(ctx)}   (follow it with: tail -f {log_path(ctx)})")
        ctx.log("  an SSH drop or Ctrl-C leaves it running; rerun `make bootstrap` to re-attach")
        with open(log_path(ctx), "ab") as log:
            child = subprocess.Popen(
                ["nohup", "sh", str(script)], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True,
            )
        (work / "pid").write_text(str(child.pid))
        return child


def _script(ctx: Context, phases: list[Command]) -> str:
    work = work_dir(ctx)
    stamps, rc = work / "stamps", work / "rc"
    q = shlex.quote
    lines = [
        "#!/bin/sh",
        f"# Written by edgebench: GCC {GCC_VERSION}, one phase after another; a stamp in {stamps}",
        "# marks each finished phase, so a rerun starts at the first phase without one.",
        "phase() {",
        '  name=$1; dir=$2; shift 2',
        f'  if [ -f {q(str(stamps))}/"$name" ]; then echo "== $name: done before, skipped"; return 0; fi',
        '  echo "== $(date) $name: $*"',
        '  mkdir -p "$dir" && cd "$dir" && "$@" && touch ' + q(str(stamps)) + '/"$name" '
        '&& echo "== $(date) $name: done"',
        "}",
        "(",
        "  set -e",
        '  echo "== $(date) GCC build started (pid $$)"',
    ]
    for name, cmd in zip(PHASES, phases, strict=True):
        lines.append(f"  phase {name} {q(cmd.cwd or str(work))} {shlex.join(cmd.argv)}")
    lines += [
        ")",
        "status=$?",
        'echo "== $(date) GCC build finished with exit status $status"',
        f"echo $status > {q(str(rc))}.tmp && mv {q(str(rc))}.tmp {q(str(rc))}",
        "exit $status",
        "",
    ]
    return "\n".join(lines)


def _running_pid(ctx: Context) -> int | None:
    """The pid of a detached build of this checkout that is still running, if any."""
    try:
        pid = int((work_dir(ctx) / "pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid, str(work_dir(ctx) / "run.sh")) else None


def _alive(pid: int, script: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return script in cmdline and state != "Z"


def _wait(ctx: Context, pid: int, child: subprocess.Popen | None) -> int:
    """Follow the detached build until it ends; return its exit status."""
    rc_file = work_dir(ctx) / "rc"
    script = str(work_dir(ctx) / "run.sh")
    started = last_beat = time.monotonic()
    seen = set(phases_done(ctx))
    try:
        while True:
            if child is not None:
                child.poll()  # reap our own child so that it does not linger as a zombie
            if rc_file.is_file():
                break
            if not _alive(pid, script) and (child is None or child.returncode is not None):
                time.sleep(0.2)  # the script writes rc as its last act: give it a moment
                if rc_file.is_file():
                    break
                raise UserError(
                    f"the GCC build (pid {pid}) stopped without finishing (killed, out of memory, or a reboot?)",
                    fix=f"look at the end of {log_path(ctx)} and `dmesg | tail`; then rerun `make bootstrap` "
                    f"(it resumes at '{first_missing_phase(ctx)}'); on a 4 GB board --make-swap helps",
                )
            now_done = set(phases_done(ctx))
            for p in PHASES:
                if p in now_done - seen:
                    ctx.log(f"  gcc: phase '{p}' finished after {_hms(time.monotonic() - started)}")
            seen = now_done
            if time.monotonic() - last_beat >= HEARTBEAT_S:
                last_beat = time.monotonic()
                ctx.log(f"  gcc: '{first_missing_phase(ctx)}' still running ({_hms(last_beat - started)} so far)")
            _sleep(POLL_S)
    except KeyboardInterrupt:
        raise UserError(
            f"stopped waiting; the GCC build goes on in the background (pid {pid}, log {log_path(ctx)})",
            fix="rerun `make bootstrap` to re-attach to it (or `kill " + str(pid) + "` to stop it)",
        ) from None
    try:
        return int(rc_file.read_text().strip())
    except ValueError:
        return 1


def _sleep(seconds: float) -> None:
    """The wait between looks at the detached build (tests interrupt it here)."""
    time.sleep(seconds)


def verify(ctx: Context) -> str:
    for tool in ("gcc", "g++"):
        line = version_line(gcc_bin(ctx, tool))
        if not line or GCC_VERSION not in line:
            raise UserError(
                f"{gcc_bin(ctx, tool)} --version says {line!r}, not GCC {GCC_VERSION}",
                fix="edgebench bootstrap --redo gcc",
            )
    return version_line(gcc_bin(ctx, "gcc")) or ""


# -- packing and unpacking a built compiler -------------------------------------------------

def packed_name(machine: str | None = None) -> str:
    return f"gcc-{GCC_VERSION}-{machine or _platform.machine()}.tar.gz"


def pack(ctx: Context, dest: Path | None = None) -> Path:
    """Write the installed prefix as a tarball whose paths are relative (GCC finds its own
    parts relative to its driver, so it runs from wherever it is unpacked)."""
    pre = prefix(ctx)
    line = version_line(pre / "bin" / "gcc")
    if not line or GCC_VERSION not in line:
        raise UserError(f"there is no built GCC {GCC_VERSION} in {pre} to pack", fix="make bootstrap first")
    dest = dest or ctx.options.build / "dist" / packed_name(ctx.platform.get("machine"))
    dest.parent.mkdir(parents=True, exist_ok=True)
    manifest = {
        "gcc_version": GCC_VERSION,
        "version_line": line,
        "machine": ctx.platform.get("machine") or _platform.machine(),
        "l4t_release": ctx.platform.get("l4t_release"),
        "jetson_model": ctx.platform.get("jetson_model"),
        "configure_flags": list(CONFIGURE_FLAGS),
        "packed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (pre / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    part = dest.with_name(dest.name + ".partial")
    with tarfile.open(part, "w:gz") as tar:
        tar.add(pre, arcname=f"gcc-{GCC_VERSION}")
    fsutil.replace_file(part, dest)
    digest = net.sha256_file(dest)
    dest.with_name(dest.name + ".sha256").write_text(f"{digest}  {dest.name}\n")
    return dest


def install_packed(ctx: Context, tarball: Path) -> dict:
    if not tarball.is_file():
        raise UserError(f"--gcc-from {tarball}: no such file", fix="the path of a tarball written by --pack-gcc")
    digest = check_packed_digest(ctx, tarball)
    pre = prefix(ctx)
    tmp = pre.with_name(pre.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    ctx.log(f"  unpacking {tarball} into {pre}")
    try:
        manifest = _unpack(tarball, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # whatever stopped it, no half compiler stays behind
        raise
    here = ctx.platform.get("machine") or _platform.machine()
    if manifest.get("gcc_version") != GCC_VERSION or manifest.get("machine") != here:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(
            f"{tarball} holds GCC {manifest.get('gcc_version')} for {manifest.get('machine')}; "
            f"this board needs GCC {GCC_VERSION} for {here}",
            fix="use a tarball packed on a board of the same kind, or drop --gcc-from to build GCC here",
        )
    shutil.rmtree(pre, ignore_errors=True)
    os.replace(tmp, pre)
    return {
        "method": "tarball",
        "tarball": str(tarball.resolve()),
        "tarball_sha256": digest,
        "sha256_file_checked": tarball.with_name(tarball.name + ".sha256").is_file(),
        "packed_on": {k: manifest.get(k) for k in ("l4t_release", "jetson_model", "packed_at")},
        "version": verify(ctx),
        "prefix": str(pre),
    }


def _unpack(tarball: Path, tmp: Path) -> dict:
    try:
        fsutil.extract_tar(tarball, tmp, strip=1)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise UserError(f"--gcc-from {tarball}: cannot unpack it ({exc})", fix="pack it again with --pack-gcc") from exc
    try:
        manifest = json.loads((tmp / MANIFEST).read_text())
    except (OSError, ValueError):
        manifest = None
    if not isinstance(manifest, dict):
        raise UserError(f"{tarball} was not written by `edgebench bootstrap --pack-gcc` (no {MANIFEST})",
                        fix="pack the compiler with `edgebench bootstrap --pack-gcc` on the board that built it")
    return manifest


def check_packed_digest(ctx: Context, tarball: Path) -> str:
    """The tarball's SHA-256, checked against the `.sha256` that --pack-gcc wrote beside it
    (a copy cut short or altered on its way to this board is refused before unpacking)."""
    digest = net.sha256_file(tarball)
    sidecar = tarball.with_name(tarball.name + ".sha256")
    try:
        words = sidecar.read_text(errors="replace").split()
    except FileNotFoundError:
        ctx.log(f"  no {sidecar.name} beside it: its SHA-256 ({digest}) is not checked")
        return digest
    expected = words[0].lower() if words else "(nothing)"
    if expected != digest:
        raise UserError(f"--gcc-from {tarball}: its SHA-256 is {digest}, but {sidecar.name} says {expected}",
                        fix="copy the tarball again from the board that packed it (or pack it again with --pack-gcc)")
    ctx.log(f"  SHA-256 {digest} matches {sidecar.name}")
    return digest


def _tail(path: Path, n: int) -> list[str]:
    try:
        return path.read_bytes()[-8000:].decode("utf-8", "replace").strip().splitlines()[-n:]
    except OSError:
        return []


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
