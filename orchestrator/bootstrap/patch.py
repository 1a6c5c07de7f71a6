"""Step: the Jetson Nano patch to llama.cpp's Makefile (nvcc -maxrregcount=80, no C++
-mcpu=native on aarch64). Applied after a dry run; a tree already patched is left alone."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from orchestrator import packaged
from orchestrator.bootstrap.steps import Command, Context, Step, sh
from orchestrator.errors import UserError

NANO_PATCH_NAME = "llama.cpp-a33e6a0-jetson-nano.patch"


def nano_patch() -> Path:
    """The Nano patch, shipped inside the package (orchestrator/data/patches/), from a checkout or an
    installed wheel alike; looked up when used, so a broken install fails the patch step, not
    every command. `patch --input` needs a real file, which an unzipped install has."""
    return packaged.data_path("patches", NANO_PATCH_NAME)


def patch_argv(patch: Path, *extra: str) -> tuple[str, ...]:
    if shutil.which("patch") is None:
        raise UserError("GNU patch is not installed", fix="sudo apt-get install patch")
    return ("patch", "-p1", "--batch", "--silent", "--input", str(patch), *extra)


def patch_state(tree: Path, patch: Path | None = None) -> str:
    """'applied', 'clean' (applies), or 'conflict' (neither), judged by dry runs only."""
    patch = patch or nano_patch()

    def ok(*extra: str) -> bool:
        return subprocess.run(patch_argv(patch, "--dry-run", *extra), cwd=tree, capture_output=True).returncode == 0

    if ok("--reverse", "--force"):
        return "applied"
    if ok("--forward"):
        return "clean"
    return "conflict"


def apply_patch(tree: Path, patch: Path | None = None) -> bool:
    """Apply once. Returns False when it was already applied; raises on a conflicting tree."""
    patch = patch or nano_patch()
    state = patch_state(tree, patch)
    if state == "applied":
        return False
    if state == "conflict":
        raise UserError(
            f"{patch.name} neither applies to {tree} nor is already applied there: "
            "the tree is not a33e6a0 or was edited",
            fix="edgebench bootstrap --redo llama-source",
        )
    sh(Command(patch_argv(patch, "--forward"), cwd=str(tree)))
    return True


class ApplyPatch(Step):
    name = "patch"
    title = "apply the Jetson Nano Makefile patch"
    depends = ("llama-source",)

    def is_done(self, ctx: Context) -> bool:
        return (
            ctx.entry(self.name) is not None
            and (ctx.options.llama_dir / "Makefile").is_file()
            and patch_state(ctx.options.llama_dir) == "applied"
        )

    def commands(self, ctx: Context) -> list[Command]:
        return [Command(patch_argv(nano_patch(), "--forward"), cwd=str(ctx.options.llama_dir))]

    def run(self, ctx: Context) -> dict:
        from orchestrator.net import sha256_file

        patch = nano_patch()
        changed = apply_patch(ctx.options.llama_dir, patch)
        ctx.log(f"  {patch.name}: {'applied' if changed else 'already applied'}")
        return {"patch": patch.name, "patch_sha256": sha256_file(patch)}
