"""Step: llama.cpp at commit a33e6a0, from git, from the PyPI sdist that vendors it, or from
a local folder. Every route is checked against fingerprints of the commit's own files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from orchestrator import fsutil, net
from orchestrator.bootstrap.steps import Command, Context, Step, sh
from orchestrator.errors import UserError

COMMIT = "a33e6a0"
GIT_URL = os.environ.get("EDGEBENCH_LLAMA_GIT_URL", "https://github.com/ggerganov/llama.cpp")
SDIST_PROJECT = "llama-cpp-python"
SDIST_VERSION = "0.2.52"
SDIST_FILE = f"llama_cpp_python-{SDIST_VERSION}.tar.gz"
SDIST_SHA256 = "cc3f670ea5b315547396b0bbc108fcc9602d19b8af858e03c4c0fae385fb9a04"
SDIST_PREFIX = "llama_cpp_python-0.2.52/vendor/llama.cpp/"

# SHA-256 of files of commit a33e6a0 (before our patch), as the sdist and the git tree hold them.
FINGERPRINT = {
    "llama.cpp": "894efee42bca26ede9b9cd70f30b192c0f67059191e4d9a6125d04ef6e6c6d2c",
    "ggml.c": "6cb309543103d00d24fe858b37ca744cac45a2de6f02d5c61405758816164844",
    "examples/main/main.cpp": "ce63329aa6e3a752c0eb4c734491b6ef22a7845189ebfd981362ca5a3e4f1ec6",
    "ggml-cuda.cu": "7f1392bd926738f584f319bf2e542babcc9b461fb3beb65ff4e670cab282b2b0",
}


def fingerprint_mismatches(tree: Path) -> list[str]:
    bad = []
    for rel, digest in FINGERPRINT.items():
        p = tree / rel
        if not p.is_file() or net.sha256_file(p) != digest:
            bad.append(rel)
    return bad


class LlamaSource(Step):
    name = "llama-source"
    title = f"llama.cpp source at {COMMIT}"

    def is_done(self, ctx: Context) -> bool:
        return ctx.entry(self.name) is not None and (ctx.options.llama_dir / "Makefile").is_file()

    def urls(self, ctx: Context) -> list[tuple[str | tuple[str, ...], str]]:
        m = self.method(ctx)
        if m == "path":
            return []
        sdist = ctx.options.cache / "downloads" / SDIST_FILE
        pypi = () if sdist.is_file() else (net.pypi_index(),)
        if m == "git":
            return [(GIT_URL, f"llama.cpp {COMMIT} from git")]
        if m == "pypi":
            return [(u, f"the {SDIST_FILE} sdist") for u in pypi]
        return [((GIT_URL, *pypi), f"llama.cpp {COMMIT}: git, or else the {SDIST_FILE} sdist")] if pypi else []

    def method(self, ctx: Context) -> str:
        choice = ctx.options.llama_source
        if choice in ("git", "pypi", "auto"):
            return choice
        return "path"

    def commands(self, ctx: Context) -> list[Command]:
        m = self.method(ctx)
        tmp = str(ctx.options.build / ".llama.cpp.partial")
        git = git_commands(tmp)
        pypi = [
            Command(("download", f"{SDIST_PROJECT}=={SDIST_VERSION}", f"sha256={SDIST_SHA256}")),
            Command(("extract", SDIST_PREFIX, tmp)),
        ]
        if m == "git":
            return git
        if m == "pypi":
            return pypi
        if m == "auto":
            return git + [Command(("# if GitHub is unreachable:",))] + pypi
        return [Command(("copy", str(ctx.options.llama_source), tmp))]

    def run(self, ctx: Context) -> dict:
        opts = ctx.options
        tmp = opts.build / ".llama.cpp.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        opts.build.mkdir(parents=True, exist_ok=True)
        method = self.method(ctx)
        record: dict = {"commit": COMMIT, "fallback_reason": None}
        if method == "auto":
            try:
                net.probe(GIT_URL)
                method = "git"
            except net.Unreachable as exc:
                # the same commit, fingerprinted below: a different route, not a different source
                ctx.log(f"warning: llama-source: GitHub is unreachable ({exc}); using the PyPI sdist {SDIST_FILE} "
                        "instead (it vendors the same commit)")
                record["fallback_reason"] = f"{exc}; url {GIT_URL}"
                method = "pypi"
        if method == "git":
            record.update(self._from_git(ctx, tmp))
        elif method == "pypi":
            record.update(self._from_pypi(ctx, tmp))
        else:
            record.update(self._from_path(ctx, tmp, Path(opts.llama_source)))
        bad = fingerprint_mismatches(tmp)
        if bad:
            shutil.rmtree(tmp, ignore_errors=True)
            raise UserError(
                f"the llama.cpp source ({record['origin']}) is not commit {COMMIT}: {', '.join(bad)} differ",
                fix="--llama-source pypi (or a checkout of a33e6a0)",
            )
        shutil.rmtree(opts.llama_dir, ignore_errors=True)
        os.replace(tmp, opts.llama_dir)
        record["method"] = method
        ctx.log(f"  llama.cpp {COMMIT} from {method}: {record['origin']}")
        return record

    def _from_git(self, ctx: Context, tmp: Path) -> dict:
        try:
            net.probe(GIT_URL)
        except net.Unreachable as exc:
            raise UserError(
                f"cannot clone llama.cpp: {exc}",
                fix="edgebench bootstrap --llama-source pypi (the PyPI sdist vendors the same commit)",
            ) from exc
        for cmd in git_commands(str(tmp)):
            sh(cmd, timeout=1800)
        head = sh(Command(("git", "-C", str(tmp), "rev-parse", "HEAD"))).strip()
        return {"origin": GIT_URL, "git_head": head}

    def _from_pypi(self, ctx: Context, tmp: Path) -> dict:
        dest = ctx.options.cache / "downloads" / SDIST_FILE
        try:
            if not dest.exists():
                url, _ = net.pypi_sdist_url(SDIST_PROJECT, SDIST_FILE, log=ctx.log)
                net.download(url, dest, sha256=SDIST_SHA256, log=ctx.log)
            elif net.sha256_file(dest) != SDIST_SHA256:
                dest.unlink()
                return self._from_pypi(ctx, tmp)
            else:
                ctx.log(f"  using cached {dest}")
        except net.Unreachable as exc:
            raise UserError(
                f"cannot download {SDIST_FILE} from PyPI: {exc}",
                fix="--llama-source PATH with a local checkout of llama.cpp a33e6a0",
            ) from exc
        fsutil.extract_tar(dest, tmp, members=lambda name: name.startswith(SDIST_PREFIX),
                           strip=len(Path(SDIST_PREFIX).parts))
        # The sdist's vendor folder carries a gitlink to a repository that is not there.
        (tmp / ".git").unlink(missing_ok=True)
        return {"origin": f"pypi:{SDIST_PROJECT}=={SDIST_VERSION}", "sdist_sha256": SDIST_SHA256}

    def _from_path(self, ctx: Context, tmp: Path, src: Path) -> dict:
        if not (src / "Makefile").is_file():
            raise UserError(f"{src} is not a llama.cpp source tree (no Makefile)", fix="--llama-source pypi")
        shutil.copytree(src, tmp, symlinks=True, ignore=shutil.ignore_patterns("*.o", ".git"))
        return {"origin": str(src.resolve())}


def git_commands(dest: str) -> list[Command]:
    env = (("GIT_TERMINAL_PROMPT", "0"),)  # never wait for credentials in an unattended run
    return [
        Command(("git", "clone", "--filter=blob:none", "--no-checkout", GIT_URL, dest), env=env),
        Command(("git", "-C", dest, "checkout", "-q", COMMIT), env=env),
    ]

