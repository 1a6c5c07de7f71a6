"""Which steps a profile runs, in order."""

from __future__ import annotations

from orchestrator.bootstrap.build import BuildLlama
from orchestrator.bootstrap.cuda import CudaProbe, Smoke
from orchestrator.bootstrap.gcc import Gcc
from orchestrator.bootstrap.jetson_stats import JetsonStats
from orchestrator.bootstrap.llama_source import LlamaSource
from orchestrator.bootstrap.model import Model
from orchestrator.bootstrap.patch import ApplyPatch
from orchestrator.bootstrap.python_env import PythonEnv
from orchestrator.bootstrap.steps import Step

PROFILES = ("host", "jetson-nano", "jetson-orin")


def steps_for(profile: str) -> list[Step]:
    if profile == "host":
        return [LlamaSource(), ApplyPatch(), BuildLlama(), Model()]
    # On a board: the steps that need sudo run first (right after `sudo -v`), then the hours
    # of GCC (Nano only: JetPack 5/6 bring CUDA 11/12 and a GCC that nvcc accepts), then the
    # CUDA build of llama.cpp for the probed architecture, the model, and a GPU smoke test.
    board = [PythonEnv(), JetsonStats()]
    if profile == "jetson-nano":
        board.append(Gcc())
    return [*board, LlamaSource(), ApplyPatch(), CudaProbe(), BuildLlama(), Model(), Smoke()]
