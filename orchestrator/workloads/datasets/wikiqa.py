"""simple: WikiQA questions, one per question id. Original TSV (rows of a question contiguous,
raw quotes, read with no quoting) or the Hugging Face parquet (`question_id, question, ...`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .common import Candidate, bad, read_rows, split_from_name

HEADER = [
    "QuestionID",
    "Question",
    "DocumentID",
    "DocumentTitle",
    "SentenceID",
    "Sentence",
    "Label",
]
PATTERNS = ("*.tsv", "*.parquet", "*.jsonl")


def candidates(path: Path, rel: str) -> Iterator[Candidate]:
    split = split_from_name(rel)
    if path.suffix == ".tsv":
        rows = _tsv_rows(path)
    else:
        rows = (
            (f"row {i}", r.get("question_id"), r.get("question"))
            for i, r in enumerate(read_rows(path))
        )
    seen = set()
    for where, qid, question in rows:
        if not isinstance(qid, str) or not isinstance(question, str):
            raise bad(path, where, "missing question_id or question")
        if qid in seen:
            continue
        seen.add(qid)
        if question.strip():
            yield Candidate(question.strip(), qid, split, rel)


def _tsv_rows(path: Path) -> Iterator[tuple[str, str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        for lineno, line in enumerate(fh, start=1):
            cells = line.rstrip("\r\n").split("\t")
            if lineno == 1:
                if cells[:2] != HEADER[:2]:
                    raise bad(path, "line 1", f"expected the WikiQA header {' '.join(HEADER)}")
                continue
            if not line.strip():
                continue
            where = f"line {lineno} (question {cells[0]})"
            if len(cells) != len(HEADER):
                raise bad(
                    path, where, f"expected {len(HEADER)} tab-separated fields, got {len(cells)}"
                )
            yield where, cells[0], cells[1]
