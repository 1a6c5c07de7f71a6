"""Waiting for a condition, the one way a test waits: a test that slept for a guessed time fails
on a loaded machine. The timeout only ends a test whose condition never comes; it is no speed
target (those are `make bench`'s)."""

from __future__ import annotations

import time


def wait_for(pred, timeout: float = 120.0, step: float = 0.01) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return False
