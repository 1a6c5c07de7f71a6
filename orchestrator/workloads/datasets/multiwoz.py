"""task-oriented: one MultiWOZ 2.2 dialogue's user turns, each as `<USER> ...`, after an
instruction naming its services (DialogStudio's wording, as the study used it). Official layout
(`dialogues_NNN.json`: a list of `{dialogue_id, services, turns}`) or the DialogStudio
conversion (a dict of dialogues with `prompt` and `log`). `schema.json` and `dialog_acts.json`
are skipped."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from .common import Candidate, bad, field, load_json, split_from_name

PATTERNS = ("*.json",)
SKIP = ("schema.json", "dialog_acts.json")

# DialogStudio's phrase for each MultiWOZ service.
SERVICE_TASKS = {
    "restaurant": "find a restaurant",
    "hotel": "find a hotel",
    "attraction": "find an attraction",
    "train": "book a train ticket",
    "taxi": "find a taxi",
    "hospital": "find a hospital",
    "police": "find a police station",
    "bus": "find a bus",
}
INSTRUCTION = (
    "This is a bot helping users to {tasks}. Given the dialog context, "
    "please generate a relevant system response for the user:"
)


def instruction(services: list[str]) -> str:
    tasks = [SERVICE_TASKS.get(s, f"find a {s}") for s in services]
    if not tasks:
        text = "complete specified tasks"
    elif len(tasks) == 1:
        text = tasks[0]
    else:
        text = ", ".join(tasks[:-1]) + " and " + tasks[-1]
    return INSTRUCTION.format(tasks=text)


def prompt_for(services: list[str], user_turns: list[str]) -> str:
    return " ".join([instruction(services)] + [f"<USER> {' '.join(t.split())}" for t in user_turns])


def candidates(path: Path, rel: str) -> Iterator[Candidate]:
    if path.name in SKIP:
        return
    split = split_from_name(rel)
    doc = load_json(path)
    if isinstance(doc, list):
        dialogues = _official(path, doc)
    elif isinstance(doc, dict):
        dialogues = _dialogstudio(path, doc)
    else:
        raise bad(
            path, "top level", "expected a list of dialogues (MultiWOZ) or a dict (DialogStudio)"
        )
    for did, services, turns, own_split in dialogues:
        turns = [t for t in turns if t.strip()]
        if turns:
            yield Candidate(
                prompt_for(services, turns), did, own_split or split, rel, {"services": services}
            )


def _official(path: Path, doc: list) -> Iterator[tuple[str, list, list, None]]:
    for i, dialogue in enumerate(doc):
        did = field(dialogue, "dialogue_id", str, path, f"dialogue {i}")
        where = f"dialogue {i} ({did})"
        services = field(dialogue, "services", list, path, where)
        turns = []
        for t, turn in enumerate(field(dialogue, "turns", list, path, where)):
            if field(turn, "speaker", str, path, f"{where} turn {t}") == "USER":
                turns.append(field(turn, "utterance", str, path, f"{where} turn {t}"))
        yield did, services, turns, None


def _dialogstudio(path: Path, doc: dict) -> Iterator[tuple[str, list, list, str | None]]:
    """Keys read `MULTIWOZ2_2--train--1`: the middle part is the split."""
    for key, dialogue in doc.items():
        where = f"dialogue {key}"
        did = field(dialogue, "original dialog id", str, path, where)
        info = field(dialogue, "original dialog info", (dict, str), path, where)
        try:
            services = (ast.literal_eval(info) if isinstance(info, str) else info).get(
                "services", []
            )
        except (ValueError, SyntaxError, AttributeError):
            services = None
        if not isinstance(services, list):
            raise bad(path, where, "'original dialog info' does not hold a services list")
        turns = [
            field(turn, "user utterance", str, path, f"{where} log {t}")
            for t, turn in enumerate(field(dialogue, "log", list, path, where))
        ]
        parts = key.split("--")
        yield did, list(services), turns, parts[1] if len(parts) == 3 else None
