"""Step: the Jetson Nano patch to llama.cpp's Makefile (nvcc -maxrregcount=80, no C++
-mcpu=native on aarch64). Applied after a dry run; a tree already patched is left alone."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from orchestrator.bootstrap.steps import Command, Context, Step, sh
from orchestrator.errors import UserError

PATCHES_DIR = Path(__file__).resolve().parents[2] / "patches"
NANO_PATCH = PATCHES_DIR / "llama.cpp-a33e6a0-jetson-nano.patch"


def _patch_argv(patch: Path, *extra: str) -> tuple[str, ...]:
    if shutil.which("patch") is None:
        raise UserError("GNU patch is not installed", fix="sudo apt-get install patch")
    return ("patch", "-p1", "--batch", "--silent", "--input", str(patch), *extra)


def patch_state(tree: Path, patch: Path = NANO_PATCH) -> str:
    """'applied', 'clean' (applies), or 'conflict' (neither), judged by dry runs only."""

    def ok(*extra: str) -> bool:
        return subprocess.run(_patch_argv(patch, "--dry-run", *extra), cwd=tree, capture_output=True).returncode == 0

    if ok("--reverse", "--force"):
        return "applied"
    if ok("--forward"):
        return "clean"
    return "conflict"


def apply_patch(tree: Path, patch: Path = NANO_PATCH) -> bool:
    """Apply once. Returns False when it was already applied; raises on a conflicting tree."""
    state = patch_state(tree, patch)
    if state == "applied":
        return False
    if state == "conflict":
        raise UserError(
            f"{patch.name} neither applies to {tree} nor is already applied there: "
            "the tree is not a33e6a0 or was edited",
            fix="edgebench bootstrap --force llama-source",
        )
    sh(Command(_patch_argv(patch, "--forward"), cwd=str(tree)))
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
        return [Command(_patch_argv(NANO_PATCH, "--forward"), cwd=str(ctx.options.llama_dir))]

    def run(self, ctx: Context) -> dict:
        from orchestrator.net import sha256_file

        changed = apply_patch(ctx.options.llama_dir)
        ctx.log(f"  {NANO_PATCH.name}: {'applied' if changed else 'already applied'}")
        return {"patch": NANO_PATCH.name, "patch_sha256": sha256_file(NANO_PATCH)}
