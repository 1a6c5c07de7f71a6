"""Which steps a profile runs, in order."""

from __future__ import annotations

from orchestrator.bootstrap.build import BuildLlama
from orchestrator.bootstrap.llama_source import LlamaSource
from orchestrator.bootstrap.model import Model
from orchestrator.bootstrap.patch import ApplyPatch
from orchestrator.bootstrap.steps import Step

PROFILES = ("host", "jetson-nano", "jetson-orin")


def steps_for(profile: str) -> list[Step]:
    return [LlamaSource(), ApplyPatch(), BuildLlama(), Model()]
