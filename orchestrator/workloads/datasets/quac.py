"""contextual: QuAC `::context:: ... ::question:: ...`, the context without its trailing
`CANNOTANSWER`. One query per dialogue, from its first question: later questions lean on
earlier answers that the prompt does not carry. Original JSON (SQuAD-like) or HF rows
(one per dialogue: `dialogue_id, context, questions, ...`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .common import Candidate, bad, field, load_json, read_rows, split_from_name

PATTERNS = ("*.json", "*.jsonl", "*.parquet")


def prompt_for(context: str, question: str) -> str:
    context = " ".join(context.split())
    if context.endswith("CANNOTANSWER"):
        context = context[: -len("CANNOTANSWER")].rstrip()
    return f"::context:: {context} ::question:: {' '.join(question.split())}"


def candidates(path: Path, rel: str) -> Iterator[Candidate]:
    split = split_from_name(rel)
    doc = load_json(path) if path.suffix == ".json" else None
    if isinstance(doc, dict):
        for a, article in enumerate(field(doc, "data", list, path, "top level")):
            for p, para in enumerate(field(article, "paragraphs", list, path, f"data[{a}]")):
                where = f"data[{a}].paragraphs[{p}]"
                context = field(para, "context", str, path, where)
                qas = field(para, "qas", list, path, where)
                if not qas:
                    continue
                qid = field(qas[0], "id", str, path, f"{where}.qas[0]")
                question = field(qas[0], "question", str, path, f"{where}.qas[0] (id {qid})")
                yield Candidate(prompt_for(context, question), qid, split, rel)
        return
    rows = doc if isinstance(doc, list) else read_rows(path)
    for i, row in enumerate(rows):
        where = f"row {i}"
        did = field(row, "dialogue_id", str, path, where)
        context = field(row, "context", str, path, f"{where} ({did})")
        questions = field(row, "questions", list, path, f"{where} ({did})")
        if questions:
            if not isinstance(questions[0], str):
                raise bad(path, f"{where} ({did})", "'questions' should hold strings")
            yield Candidate(prompt_for(context, questions[0]), f"{did}_q#0", split, rel)
