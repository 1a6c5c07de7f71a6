"""build/ledger.json: what each bootstrap step did, when, with which versions and hashes.

Written atomically after every step, so an interrupted bootstrap never leaves a step
marked done that did not finish."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator import fsutil

SCHEMA = 1


class Ledger:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.data = {"schema": SCHEMA, "steps": {}}
        if self.path.exists():
            try:
                loaded = json.loads(self.path.read_text())
            except ValueError:
                loaded = None  # a torn ledger means "nothing is known to be done"
            if isinstance(loaded, dict) and loaded.get("schema") == SCHEMA:
                self.data = loaded

    @property
    def steps(self) -> dict:
        return self.data["steps"]

    def get(self, name: str) -> dict | None:
        entry = self.steps.get(name)
        return entry if entry and entry.get("status") == "done" else None

    def record(self, name: str, entry: dict) -> None:
        self.steps[name] = entry
        self.save()

    def forget(self, name: str) -> None:
        if self.steps.pop(name, None) is not None:
            self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fsutil.atomic_write(self.path, (json.dumps(self.data, indent=2, sort_keys=True) + "\n").encode("utf-8"))
