"""Waiting for a condition, the one way a test waits: a test that slept for a guessed time fails
on a loaded machine. The timeout only ends a test whose condition never comes; it is no speed
target (those are `make bench`'s)."""

from __future__ import annotations

import time

# How long a subprocess of a test may take before the test calls it hung. Not a speed target: real
# llama.cpp queries on a loaded 2-core machine have taken over a minute each.
HANG_S = 1800


def wait_for(pred, timeout: float = 120.0, step: float = 0.01) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return False
