"""The five public datasets the study drew its workload from: one module each, and one table
of where each comes from and under which licence. The project never ships their text: it
downloads them on the user's machine (or reads the user's copies) and records the licence
with every query."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from orchestrator.errors import UserError

from . import friends, multiwoz, quac, squad_v2, wikiqa
from .common import Candidate


@dataclass(frozen=True)
class Dataset:
    name: str  # the folder under --from DIR and under build/datasets/
    category: str
    licence: str
    urls: tuple[str, ...]  # official sources; the file name is the URL's last part
    reader: ModuleType
    unpack: tuple[str, ...] = ()  # for an archive: the members to extract (by file name)

    def files(self, folder: Path) -> list[Path]:
        """The files this dataset's reader understands, in a stable order."""
        found = {
            p for pattern in self.reader.PATTERNS for p in folder.rglob(pattern) if p.is_file()
        }
        return sorted(found, key=lambda p: p.relative_to(folder).as_posix())

    def candidates(self, folder: Path) -> Iterator[Candidate]:
        """Candidate records from every file in `folder`, in file order, without repeats (the
        same record id or the same prompt twice, e.g. a split and the whole-corpus file)."""
        files = self.files(folder)
        if not files:
            raise UserError(
                f"no {self.name} files in {folder} (expected {', '.join(self.reader.PATTERNS)})",
                fix=f"put the official files in {folder}, or leave out --from to download them",
            )
        seen_ids, seen_prompts = set(), set()
        for path in files:
            for cand in self.reader.candidates(path, path.relative_to(folder).as_posix()):
                if cand.record_id in seen_ids or cand.prompt in seen_prompts:
                    continue
                seen_ids.add(cand.record_id)
                seen_prompts.add(cand.prompt)
                yield cand


MULTIWOZ_DEV = (
    "https://raw.githubusercontent.com/budzianowski/multiwoz/master/data/MultiWOZ_2.2/dev/"
)

# category -> dataset, in the study's category order.
DATASETS = {
    "simple": Dataset(
        "wikiqa",
        "simple",
        "Microsoft Research Data License (research use only)",
        (
            "https://download.microsoft.com/download/E/5/F/E5FCFCEE-7005-4814-853D-DAA7C66507E0/WikiQACorpus.zip",
        ),
        wikiqa,
        unpack=("WikiQA-train.tsv", "WikiQA-dev.tsv", "WikiQA-test.tsv"),
    ),
    "complex": Dataset(
        "squad_v2",
        "complex",
        "CC BY-SA 4.0",
        ("https://rajpurkar.github.io/SQuAD-explorer/dataset/dev-v2.0.json",),
        squad_v2,
    ),
    "conversational": Dataset(
        "friends",
        "conversational",
        "none declared (TV script text; research use only)",
        (
            "https://huggingface.co/datasets/michellejieli/friends_dataset/resolve/main/friends_cleaned.csv",
        ),
        friends,
    ),
    "task-oriented": Dataset(
        "multiwoz_2.2",
        "task-oriented",
        "MIT",
        (MULTIWOZ_DEV + "dialogues_001.json", MULTIWOZ_DEV + "dialogues_002.json"),
        multiwoz,
    ),
    "contextual": Dataset(
        "quac",
        "contextual",
        "MIT (per its Hugging Face card; CC BY-SA 4.0 per some sources)",
        ("https://s3.amazonaws.com/my89public/quac/val_v0.2.json",),
        quac,
    ),
}

__all__ = ["DATASETS", "Candidate", "Dataset"]
