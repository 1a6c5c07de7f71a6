"""Samplers: small threads that watch the inference process (and later the board) while a
query runs. The runner is handed samplers and never builds them, so tests can pass fakes."""

from .base import Sampler
from .process import ProcessSampler

__all__ = ["ProcessSampler", "Sampler"]
