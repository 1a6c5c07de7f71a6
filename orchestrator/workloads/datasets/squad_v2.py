"""complex: SQuAD v2.0 questions (`data[].paragraphs[].qas[]`), or HF rows (`id, question`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .common import Candidate, bad, field, load_json, read_rows, split_from_name

PATTERNS = ("*.json", "*.parquet", "*.jsonl")


def candidates(path: Path, rel: str) -> Iterator[Candidate]:
    split = split_from_name(rel)
    if path.suffix != ".json":
        for i, row in enumerate(read_rows(path)):
            if not isinstance(row.get("id"), str) or not isinstance(row.get("question"), str):
                raise bad(path, f"row {i}", "missing id or question")
            yield Candidate(row["question"].strip(), row["id"], split, rel)
        return
    doc = load_json(path)
    for a, article in enumerate(field(doc, "data", list, path, "top level")):
        for p, para in enumerate(field(article, "paragraphs", list, path, f"data[{a}]")):
            for q, qa in enumerate(field(para, "qas", list, path, f"data[{a}].paragraphs[{p}]")):
                where = f"data[{a}].paragraphs[{p}].qas[{q}]"
                qid = field(qa, "id", str, path, where)
                question = field(qa, "question", str, path, f"{where} (id {qid})")
                if question.strip():
                    yield Candidate(question.strip(), qid, split, rel)
