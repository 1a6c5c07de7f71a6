"""conversational: Friends utterances. HF layout (`friends_cleaned.csv`, `text,label`) or the
EmotionX JSON (dialogues of `{speaker, utterance, emotion, annotation}`). Empty and one-word
lines are skipped; Windows-1252 characters mis-decoded as C1 controls (U+0092 for the
apostrophe, U+0097 for the dash, ...) are put right."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

from .common import Candidate, bad, field, load_json, split_from_name

PATTERNS = ("*.csv", "*.json")
_C1 = re.compile("[\x80-\x9f]")
# Windows-1252 punctuation, as plain ASCII (the rest of the corpus is ASCII).
_ASCII = {
    "\x91": "'",
    "\x92": "'",
    "\x93": '"',
    "\x94": '"',
    "\x85": "...",
    "\x96": "-",
    "\x97": "--",
}


def fix_text(text: str) -> str:
    def cp1252(m: re.Match) -> str:
        char = m.group()
        if char in _ASCII:
            return _ASCII[char]
        try:
            return bytes([ord(char)]).decode("cp1252")
        except UnicodeDecodeError:
            return ""

    return " ".join(_C1.sub(cp1252, text).replace("\xa0", " ").split())


def candidates(path: Path, rel: str) -> Iterator[Candidate]:
    split = split_from_name(rel)
    stem = Path(rel).stem
    if path.suffix == ".csv":
        utterances = _csv(path)
    else:
        utterances = _emotionx(path)
    for rid, text in utterances:
        text = fix_text(text)
        if len(text.split()) >= 2:
            yield Candidate(text, f"{stem}:{rid}", split, rel)


def _csv(path: Path) -> Iterator[tuple[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header or "text" not in header:
            raise bad(path, "line 1", "expected a CSV header with a 'text' column (text,label)")
        col = header.index("text")
        for n, row in enumerate(reader, start=1):
            if len(row) != len(header):
                raise bad(
                    path,
                    f"row {n} (line {reader.line_num})",
                    f"expected {len(header)} fields, got {len(row)}",
                )
            yield f"row{n}", row[col]


def _emotionx(path: Path) -> Iterator[tuple[str, str]]:
    doc = load_json(path)
    if not isinstance(doc, list):
        raise bad(path, "top level", "expected a list of dialogues (EmotionX layout)")
    for d, dialogue in enumerate(doc):
        if not isinstance(dialogue, list):
            raise bad(path, f"dialogue {d}", "expected a list of lines")
        for u, line in enumerate(dialogue):
            yield f"d{d}:u{u}", field(line, "utterance", str, path, f"dialogue {d} line {u}")
