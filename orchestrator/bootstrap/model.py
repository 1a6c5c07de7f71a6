"""Step: the model. The real TinyLlama-1.1B-Chat Q5_K_M GGUF when Hugging Face answers, a
user's own GGUF with --model, or else a synthesised timing twin (marked synthetic)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

from orchestrator import fsutil, net
from orchestrator.bootstrap import twin
from orchestrator.bootstrap.steps import Command, Context, Step
from orchestrator.errors import UserError
from orchestrator.ggufile import read_info

MODEL_FILE = "TinyLlama-1.1B-Chat-v1.0-Q5_K_M.gguf"  # the name in the cache and under build/models
# Pinned: a commit of the Hugging Face repository, not `main`, so the bytes cannot change under
# us; the SHA-256 and size are those of that file (its Git LFS object), checked on every download.
HF_REPO = "TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF"
HF_REVISION = "52e7645ba7c309695bec7ac98f4f005b139cf465"
HF_FILE = "tinyllama-1.1b-chat-v1.0.Q5_K_M.gguf"
MODEL_URL = f"https://huggingface.co/{HF_REPO}/resolve/{HF_REVISION}/{HF_FILE}"
MODEL_SHA256 = "aa54a5fb99ace5b964859cf072346631b2da6109715a805d07161d157c66ce7f"
MODEL_SIZE = 783017344
# What the real file says about itself; checked as well, so an overridden URL and digest
# still cannot slip another model in under TinyLlama's name.
EXPECTED = {"architecture": "llama", "block_count": 22, "embedding_length": 2048, "file_type_name": "Q5_K_M"}


def model_url() -> str:
    """EDGEBENCH_MODEL_URL (a mirror, or the tests' local server), else the pinned revision."""
    return os.environ.get("EDGEBENCH_MODEL_URL") or MODEL_URL


def model_pin() -> tuple[str | None, int | None]:
    """(sha256, size) the download must match. EDGEBENCH_MODEL_SHA256 replaces the digest (and
    drops the size, which belongs to the pinned file); `skip` checks the GGUF metadata only."""
    env = os.environ.get("EDGEBENCH_MODEL_SHA256", "").strip().lower()
    if env == "skip":
        return None, None
    if env:
        return env, None
    return MODEL_SHA256, MODEL_SIZE


VOCAB_FILE = "ggml-vocab-llama-spm.gguf"
VOCAB_SHA256 = "16c3724582d59aa8bf84711894e833f916ee46a31d80e21312759c48bf8d0e69"
VOCAB_SDIST = ("llama-cpp-python", "llama_cpp_python-0.3.36.tar.gz",
               "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e")
VOCAB_MEMBER = "llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-llama-spm.gguf"


def fetch_sdist(cache: Path, log=print) -> Path:
    """The llama-cpp-python 0.3.36 sdist in the download cache, fetched from PyPI (and its
    SHA-256 checked) when the cache lacks it; raises net.Unreachable when PyPI does not answer."""
    project, filename, digest = VOCAB_SDIST
    archive = cache / "downloads" / filename
    if not (archive.is_file() and net.sha256_file(archive) == digest):
        url, _ = net.pypi_sdist_url(project, filename, log=log)
        net.download(url, archive, sha256=digest, log=log)
    return archive


def find_vocab(llama_dir: Path, cache: Path, log=print) -> Path:
    """The Llama SentencePiece vocabulary: from a git checkout of a33e6a0 when there is one,
    else from the cache, else extracted from the llama-cpp-python 0.3.36 sdist (same tokens)."""
    in_tree = llama_dir / "models" / "ggml-vocab-llama.gguf"
    if in_tree.is_file():
        return in_tree
    cached = cache / "vocab" / VOCAB_FILE
    if cached.is_file() and net.sha256_file(cached) == VOCAB_SHA256:
        return cached
    try:
        archive = fetch_sdist(cache, log)
    except net.Unreachable as exc:
        raise UserError(
            f"the Llama vocabulary for the timing twin is not here and PyPI is unreachable ({exc})",
            fix="--model PATH to a GGUF you have, or --llama-source a git checkout of llama.cpp (it has models/)",
        ) from exc
    cached.parent.mkdir(parents=True, exist_ok=True)
    data = fsutil.read_tar_member(archive, VOCAB_MEMBER)
    if hashlib.sha256(data).hexdigest() != VOCAB_SHA256:
        raise UserError(f"{VOCAB_MEMBER} in {archive} is not the expected vocabulary",
                        fix=f"rm {archive}; make bootstrap")
    fsutil.atomic_write(cached, data)
    return cached


def _place(src: Path, dest: Path) -> None:
    """Put a cached model under build/models without a second copy of its bytes."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.unlink(missing_ok=True)
    try:
        os.link(src, dest)
    except OSError:
        try:
            dest.symlink_to(src)
        except OSError:
            shutil.copy2(src, dest)


class Model(Step):
    name = "model"
    title = "the model: TinyLlama-1.1B-Chat Q5_K_M, a user's GGUF, or its timing twin"
    depends = ("build",)

    def is_done(self, ctx: Context) -> bool:
        entry = ctx.entry(self.name)
        if entry is None:
            return False
        want = str(ctx.options.model.resolve()) if ctx.options.model else None
        if want and entry.get("source_path") != want:
            return False
        p = Path(entry["path"])
        try:
            st = p.stat()
        except OSError:
            return False
        if st.st_size != entry.get("size_bytes"):
            return False
        # Hash again only when the file changed since it was recorded: keeps a rerun fast.
        return st.st_mtime_ns == entry.get("mtime_ns") or net.sha256_file(p) == entry.get("sha256")

    def urls(self, ctx: Context) -> list[tuple[str | tuple[str, ...], str]]:
        o = ctx.options
        if o.model or (o.cache / "models" / MODEL_FILE).is_file():
            return []
        if o.model_source == "download":
            return [(model_url(), "the TinyLlama GGUF")]
        # auto: Hugging Face, or else a timing twin (its vocabulary may come from the package index)
        return [((model_url(), net.pypi_index()), "the TinyLlama GGUF, or else its timing twin's vocabulary")]

    def commands(self, ctx: Context) -> list[Command]:
        o = ctx.options
        if o.model:
            return [Command(("validate", str(o.model)))]
        out = []
        if o.model_source in ("auto", "download"):
            sha, _ = model_pin()
            out.append(Command(("download", model_url(), f"sha256={sha or 'not checked'}",
                                str(o.cache / "models" / MODEL_FILE))))
        if o.model_source in ("auto", "twin"):
            if out:
                out.append(Command(("# only if Hugging Face does not answer at all (a transient error retries):",)))
            spec = twin.TWINS[o.twin]
            out.append(Command(("synthesize-twin", spec.label(), f"seed={o.twin_seed}")))
            out.append(Command((str(o.llama_dir / "quantize"), "twin.f16.gguf", "twin.gguf", spec.quant)))
        return out

    def run(self, ctx: Context) -> dict:
        o = ctx.options
        if o.model:
            path = o.model.resolve()
            info = read_info(path)
            record = {"source": "user", "source_path": str(path), "path": str(path), "fallback_reason": None}
        else:
            path, record = self._obtain(ctx)
            info = read_info(path)
            dest = o.models_dir / path.name
            _place(path, dest)
            if record.get("vocab"):  # for `edgebench workloads build` to count tokens with
                _place(Path(record["vocab"]), o.models_dir / "ggml-vocab-llama.gguf")
            record["path"] = str(dest)
            path = dest
        st = path.stat()
        record.update(
            sha256=net.sha256_file(path),
            size_bytes=st.st_size,
            mtime_ns=st.st_mtime_ns,
            synthetic=info["synthetic"],
            gguf={k: info[k] for k in ("name", "architecture", "block_count", "embedding_length", "head_count",
                                       "head_count_kv", "feed_forward_length", "context_length",
                                       "file_type_name", "vocab_size", "parameter_count")},
        )
        kind = "synthetic twin" if info["synthetic"] else record["source"]
        ctx.log(f"  model: {path} ({kind}, sha256 {record['sha256'][:12]}…)")
        return record

    def _obtain(self, ctx: Context) -> tuple[Path, dict]:
        """The model file and how it was got: `source` (huggingface | cache | twin) and, for a
        twin that stands in for the real model, `fallback_reason`. The choice is always printed
        as a warning: a run's numbers mean something else for the twin."""
        o = ctx.options
        fallback_reason = None
        if o.model_source in ("auto", "download"):
            dest = o.cache / "models" / MODEL_FILE
            url = model_url()
            sha, size = model_pin()
            before = _identity(dest)
            try:
                net.download(url, dest, sha256=sha, size=size, log=ctx.log)
            except net.Unreachable as exc:
                if o.model_source == "download":
                    raise UserError(
                        f"cannot download {MODEL_FILE}: {exc}",
                        fix="--model-source twin (a synthetic timing twin) or --model PATH",
                    ) from exc
                fallback_reason = f"{exc}; url {url}"
            else:
                info = read_info(dest)
                wrong = {k: info[k] for k, v in EXPECTED.items() if info[k] != v}
                if wrong:
                    raise UserError(f"{dest} is not TinyLlama-1.1B Q5_K_M: {wrong}", fix=f"rm {dest}; make bootstrap")
                source = "cache" if before is not None and before == _identity(dest) else "huggingface"
                checked = f"SHA-256 {sha[:12]}… checked" if sha else "SHA-256 NOT checked (EDGEBENCH_MODEL_SHA256=skip)"
                where = f"already in {dest.parent}" if source == "cache" else f"downloaded from {url}"
                ctx.log(f"warning: model: the real TinyLlama-1.1B-Chat Q5_K_M, {where} ({checked})")
                return dest, {"source": source, "url": url, "revision": _revision(url),
                              "sha256_pinned": sha, "fallback_reason": None}
        vocab = find_vocab(o.llama_dir, o.cache, ctx.log)
        spec = twin.TWINS[o.twin]
        if fallback_reason:
            ctx.log(f"warning: model: Hugging Face is unreachable ({fallback_reason}); synthesising a timing twin "
                    "instead: its timings are faithful, its text is noise (--model PATH to use a GGUF you have)")
        else:
            ctx.log("warning: model: a synthetic timing twin, as --model-source twin asks: timings are faithful, "
                    "text is noise")
        cached = o.cache / "models" / f"{o.twin}-twin-{spec.label()}-seed{o.twin_seed}.gguf"
        reused = cached.is_file() and read_info(cached)["synthetic"]
        if reused:
            ctx.log(f"  reusing the cached twin {cached}")
        else:
            twin.synthesize(spec, vocab, o.llama_dir / "quantize", cached, o.twin_seed, log=ctx.log)
        return cached, {"source": "twin", "twin_of": spec.twin_of, "twin_seed": o.twin_seed,
                        "vocab": str(vocab), "vocab_sha256": net.sha256_file(vocab),
                        "fallback_reason": fallback_reason}


def _identity(path: Path) -> tuple[int, int] | None:
    """(inode, mtime) of a file, or None: unchanged across a download means nothing was fetched."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


def _revision(url: str) -> str | None:
    """The commit in a Hugging Face `/resolve/<revision>/FILE` URL."""
    m = re.search(r"/resolve/([^/]+)/", url)
    return m.group(1) if m else None


PROVENANCE_KEYS = ("source", "fallback_reason", "url", "revision", "twin_of", "twin_seed")


def provenance(model_sha256: str, ledger_path: Path) -> dict:
    """Where a run's model came from, for its manifest: the bootstrap ledger's account when the
    ledger's model is this very file (same SHA-256), else a model the user brought."""
    from orchestrator.bootstrap.ledger import Ledger

    entry = Ledger(ledger_path).get("model") if Path(ledger_path).is_file() else None
    if not entry or entry.get("sha256") != model_sha256:
        return {"source": "user", "fallback_reason": None}
    out = {k: entry[k] for k in PROVENANCE_KEYS if k in entry}
    out.setdefault("fallback_reason", None)
    return out
