"""Building the study's workload from the five datasets: tiny files in each format written
here, the real samples in ../shared/datasets/ when present, and the real tokenizer."""

from __future__ import annotations

import csv
import functools
import http.server
import json
import os
import threading
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.errors import UserError
from orchestrator.workloads.build import Counter, build_workload
from orchestrator.workloads.datasets import DATASETS
from orchestrator.workloads.schema import CATEGORIES, OUTPUT_LIMITS, load_workload
from orchestrator.workloads.tokencount import count_tokens

INSTR = (
    "This is a bot helping users to {}. Given the dialog context, please generate a "
    "relevant system response for the user:"
)
N = 12  # records per dataset in the tiny fixtures


def _shared_datasets() -> Path | None:
    """EDGEBENCH_DATASETS, else shared/datasets beside the checkout (CI) or inside it."""
    env = os.environ.get("EDGEBENCH_DATASETS")
    checkout = Path(__file__).resolve().parents[1]
    candidates = [Path(env)] if env else []
    candidates += [checkout.parent / "shared" / "datasets", checkout / "shared" / "datasets"]
    for cand in candidates:
        if (cand / "README.md").is_file():
            return cand
    return None


SHARED = _shared_datasets()
needs_shared = pytest.mark.skipif(
    SHARED is None,
    reason="../shared/datasets not found "
    "(set EDGEBENCH_DATASETS to the folder of real dataset samples)",
)


def write_wikiqa(folder: Path) -> None:
    rows = ["QuestionID\tQuestion\tDocumentID\tDocumentTitle\tSentenceID\tSentence\tLabel"]
    for q in range(N):
        for s in range(2):  # two candidate sentences a question: one query
            rows.append(
                f'Q{q}\thow tall is tower number {q} "the old one"\tD{q}\tTower\tD{q}-{s}\tIt is tall.\t{s}'
            )
    (folder / "wikiqa").mkdir(parents=True)
    (folder / "wikiqa" / "WikiQA-dev.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")


def write_squad(folder: Path) -> None:
    qas = [
        {
            "question": f"In which year did bridge {i} open to traffic?",
            "id": f"sq{i:03d}",
            "answers": [],
            "is_impossible": True,
        }
        for i in range(N)
    ]
    doc = {
        "version": "v2.0",
        "data": [{"title": "Bridges", "paragraphs": [{"context": "Bridges.", "qas": qas}]}],
    }
    (folder / "squad_v2").mkdir(parents=True)
    (folder / "squad_v2" / "dev-v2.0.json").write_text(json.dumps(doc), encoding="utf-8")


def write_friends(folder: Path) -> None:
    (folder / "friends").mkdir(parents=True)
    with open(folder / "friends" / "friends_cleaned.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerow(["Hi!", "joy"])  # one word: skipped
        w.writerow(["", "neutral"])  # empty: skipped
        w.writerow(["I don\x92t know, maybe\x85", "neutral"])
        for i in range(N):
            w.writerow([f"We should paint wall {i}, right?", "neutral"])


def write_multiwoz(folder: Path) -> None:
    dialogues = []
    for i in range(N):
        services = [["restaurant", "attraction"], ["taxi"], []][i % 3]
        turns = []
        for t in range(3):
            turns.append(
                {
                    "turn_id": str(2 * t),
                    "speaker": "USER",
                    "utterance": f"user says {t} in dialogue {i}.",
                    "frames": [],
                }
            )
            turns.append(
                {"turn_id": str(2 * t + 1), "speaker": "SYSTEM", "utterance": "ok.", "frames": []}
            )
        dialogues.append({"dialogue_id": f"D{i}.json", "services": services, "turns": turns})
    (folder / "multiwoz_2.2" / "dev").mkdir(parents=True)
    (folder / "multiwoz_2.2" / "dev" / "dialogues_001.json").write_text(
        json.dumps(dialogues), encoding="utf-8"
    )
    (folder / "multiwoz_2.2" / "schema.json").write_text(json.dumps([{"service_name": "taxi"}]))


def write_quac(folder: Path) -> None:
    paragraphs = [
        {
            "context": f"Paragraph {i} tells a long story about a river. CANNOTANSWER",
            "id": f"C_{i}",
            "qas": [
                {"question": f"what happened to river {i}?", "id": f"C_{i}_q#0"},
                {"question": "what happened next?", "id": f"C_{i}_q#1"},
            ],
        }
        for i in range(N)
    ]
    doc = {
        "data": [
            {
                "title": "Rivers",
                "section_title": "History",
                "background": "b",
                "paragraphs": paragraphs,
            }
        ]
    }
    (folder / "quac").mkdir(parents=True)
    (folder / "quac" / "val_v0.2.json").write_text(json.dumps(doc), encoding="utf-8")


def workloads(*args) -> object:
    """`edgebench workloads ARGS...` in-process; the result has exit_code and output."""
    return CliRunner().invoke(main, ["workloads", *map(str, args)])


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.fixture
def tiny(tmp_path) -> Path:
    folder = tmp_path / "data"
    for write in (write_wikiqa, write_squad, write_friends, write_multiwoz, write_quac):
        write(folder)
    return folder


def by_category(path: Path) -> dict[str, list]:
    queries = load_workload(path)
    return {c: [q for q in queries if q.category == c] for c in CATEGORIES}


def test_build_from_tiny_files_gives_the_study_prompt_shapes(tiny, tmp_path):
    out = tmp_path / "w.jsonl"
    reports = build_workload(out, per_category=100, seed=0, from_dir=tiny)
    assert [(r.category, r.candidates, r.built, r.dropped) for r in reports] == [
        ("simple", N, N, 0),
        ("complex", N, N, 0),
        ("conversational", N + 1, N + 1, 0),
        ("task-oriented", N, N, 0),
        ("contextual", N, N, 0),
    ]
    got = by_category(out)
    q = next(q for q in got["simple"] if q.source["record_id"] == "Q3")
    assert q.prompt == 'how tall is tower number 3 "the old one"' and q.id == "wikiqa:Q3"
    assert q.source == {
        "dataset": "wikiqa",
        "split": "dev",
        "record_id": "Q3",
        "file": "WikiQA-dev.tsv",
        "licence": DATASETS["simple"].licence,
    }
    assert {q.prompt for q in got["conversational"]} >= {
        "I don't know, maybe...",
        "We should paint wall 0, right?",
    }
    assert all(len(q.prompt.split()) >= 2 for q in got["conversational"])
    task = {q.source["record_id"]: q for q in got["task-oriented"]}
    assert task["D0.json"].prompt == (
        INSTR.format("find a restaurant and find an attraction")
        + " <USER> user says 0 in dialogue 0. <USER> user says 1 in dialogue 0."
        " <USER> user says 2 in dialogue 0."
    )
    assert task["D1.json"].prompt.startswith(INSTR.format("find a taxi") + " <USER> ")
    assert task["D2.json"].prompt.startswith(INSTR.format("complete specified tasks") + " <USER> ")
    assert task["D0.json"].source["split"] == "dev" and task["D0.json"].meta["services"] == [
        "restaurant",
        "attraction",
    ]
    ctx = {q.source["record_id"]: q.prompt for q in got["contextual"]}
    assert (
        ctx["C_4_q#0"]
        == "::context:: Paragraph 4 tells a long story about a river. ::question:: what happened to river 4?"
    )
    for c in CATEGORIES:
        assert all(q.max_tokens == OUTPUT_LIMITS[c] and q.prompt_tokens_est is None for q in got[c])


def test_same_seed_same_bytes_other_seed_other_sample(tiny, tmp_path):
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    build_workload(a, per_category=4, seed=7, from_dir=tiny)
    build_workload(b, per_category=4, seed=7, from_dir=tiny)
    build_workload(c, per_category=4, seed=8, from_dir=tiny)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    ids_a, ids_c = by_category(a), by_category(c)
    for cat in CATEGORIES:
        assert len(ids_a[cat]) == 4 and len({q.prompt for q in ids_a[cat]}) == 4
    assert any({q.id for q in ids_a[cat]} != {q.id for q in ids_c[cat]} for cat in CATEGORIES)
    assert not list(tmp_path.glob(".*.jsonl.*"))  # no temp file left behind
    assert a.stat().st_mode & 0o044 == 0o044 & ~_umask()  # readable as any file the user writes


@pytest.mark.parametrize(
    "dataset, mangle, where",
    [
        (
            "wikiqa/WikiQA-dev.tsv",
            lambda t: t.replace("\tD2\tTower", "", 1),
            "WikiQA-dev.tsv: line 6 (question Q2)",
        ),
        (
            "squad_v2/dev-v2.0.json",
            lambda t: t.replace('"question": "In which year did bridge 3', '"q": "', 1),
            "dev-v2.0.json: data[0].paragraphs[0].qas[3] (id sq003): missing 'question'",
        ),
        ("squad_v2/dev-v2.0.json", lambda t: t[:-5], "dev-v2.0.json: line 1 column"),
        (
            "friends/friends_cleaned.csv",
            lambda t: t.replace('right?",neutral', 'right?",neutral,extra', 1),
            "friends_cleaned.csv: row 4 (line 5): expected 2 fields, got 3",
        ),
        (
            "multiwoz_2.2/dev/dialogues_001.json",
            lambda t: t.replace('"speaker": "USER", ', "", 1),
            "dialogues_001.json: dialogue 0 (D0.json) turn 0: missing 'speaker'",
        ),
        (
            "quac/val_v0.2.json",
            lambda t: t.replace('"context": "Paragraph 1 ', '"ctx": "', 1),
            "val_v0.2.json: data[0].paragraphs[1]: missing 'context'",
        ),
    ],
)
def test_a_malformed_file_names_the_file_and_the_record(tiny, tmp_path, dataset, mangle, where):
    path = tiny / dataset
    path.write_text(mangle(path.read_text(encoding="utf-8")), encoding="utf-8")
    result = workloads(
        "build", "--from", str(tiny), "--no-count", "--out", str(tmp_path / "w.jsonl")
    )
    assert result.exit_code == 1, result.output
    assert where in result.output and str(tiny) in result.output
    assert "fix: " in result.output
    assert not (tmp_path / "w.jsonl").exists()


def test_a_missing_dataset_folder_is_named(tiny, tmp_path):
    import shutil

    shutil.rmtree(tiny / "quac")
    result = workloads("build", "--from", str(tiny), "--no-count", "--out", str(tmp_path / "w"))
    assert result.exit_code == 1
    assert f"{tiny / 'quac'} does not exist" in result.output
    assert "leave out --from to download them" in result.output


def test_other_layouts_emotionx_dialogstudio_hf_rows(tmp_path):
    folder = tmp_path / "data"
    (folder / "friends").mkdir(parents=True)
    emotionx = [
        [
            {
                "speaker": "A",
                "utterance": "You\x92re late again!",
                "emotion": "anger",
                "annotation": "0000500",
            },
            {"speaker": "B", "utterance": "Sorry.", "emotion": "neutral", "annotation": "5000000"},
        ]
    ]
    (folder / "friends" / "friends_eval.json").write_text(json.dumps(emotionx))
    (folder / "multiwoz_2.2").mkdir()
    studio = {
        "MULTIWOZ2_2--train--1": {
            "original dialog id": "SNG1.json",
            "original dialog info": "{'services': ['hotel', 'train']}",
            "prompt": [
                "This is a bot helping users to find a hotel and book a train ticket. Given ..."
            ],
            "log": [
                {"user utterance": "I need a room.", "system response": "ok"},
                {"user utterance": "And a train.", "system response": "ok"},
            ],
        }
    }
    (folder / "multiwoz_2.2" / "converted_examples.json").write_text(json.dumps(studio))
    (folder / "quac").mkdir()
    rows = [
        {"dialogue_id": "C_9", "context": "Some text. CANNOTANSWER", "questions": ["who?", "when?"]}
    ]
    (folder / "quac" / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = [
        list(DATASETS[c].candidates(folder / DATASETS[c].name))
        for c in ("conversational", "task-oriented", "contextual")
    ]
    assert [(c.prompt, c.record_id, c.split) for c in got[0]] == [
        ("You're late again!", "friends_eval:d0:u0", "eval")
    ]
    assert [(c.prompt, c.record_id, c.split) for c in got[1]] == [
        (
            INSTR.format("find a hotel and book a train ticket")
            + " <USER> I need a room. <USER> And a train.",
            "SNG1.json",
            "train",
        )
    ]
    assert [(c.prompt, c.record_id) for c in got[2]] == [
        ("::context:: Some text. ::question:: who?", "C_9_q#0")
    ]


def test_wikiqa_parquet_needs_pyarrow_or_polars(tmp_path, monkeypatch):
    import sys

    folder = tmp_path / "wikiqa"
    folder.mkdir()
    (folder / "validation-00000-of-00001.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    monkeypatch.setitem(sys.modules, "polars", None)
    with pytest.raises(UserError, match=r"needs pyarrow or polars") as info:
        list(DATASETS["simple"].candidates(folder))
    assert "[report]" in info.value.format_message() and "pip install" in info.value.format_message()


def test_wikiqa_hf_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow", reason="pyarrow not installed (parquet is optional)")
    import pyarrow.parquet as pq

    folder = tmp_path / "wikiqa"
    folder.mkdir()
    table = pa.table(
        {
            "question_id": ["Q1", "Q1", "Q2"],
            "question": ["how big is x", "how big is x", "who is y"],
            "document_title": ["X", "X", "Y"],
            "answer": ["a", "b", "c"],
            "label": [0, 1, 0],
        }
    )
    pq.write_table(table, folder / "validation-00000-of-00001.parquet")
    got = list(DATASETS["simple"].candidates(folder))
    assert [(c.prompt, c.record_id, c.split) for c in got] == [
        ("how big is x", "Q1", "validation"),
        ("who is y", "Q2", "validation"),
    ]


def test_offline_download_fails_fast_naming_from(tmp_path, isolated_root, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_DATASET_BASE_URL", "http://127.0.0.1:9/")
    from orchestrator import net

    waits: list[float] = []
    monkeypatch.setattr(net.time, "sleep", waits.append)  # a retry would wait its backoff first
    result = workloads("build", "--no-count", "--out", str(tmp_path / "w.jsonl"))
    assert waits == []
    assert result.exit_code == 1
    assert (
        "cannot download wikiqa" in result.output
        and "http://127.0.0.1:9/wikiqa/WikiQACorpus.zip" in result.output
    )
    assert "--from DIR" in result.output
    assert not list((isolated_root / "build" / "datasets").rglob("*.part"))


def test_download_into_build_datasets_once(tiny, tmp_path, isolated_root, monkeypatch):
    served = tmp_path / "served"
    for c in CATEGORIES:
        ds = DATASETS[c]
        (served / ds.name).mkdir(parents=True)
        for url in ds.urls:
            name = url.rsplit("/", 1)[1]
            if name.endswith(".zip"):
                with zipfile.ZipFile(served / ds.name / name, "w") as zf:
                    zf.write(tiny / "wikiqa" / "WikiQA-dev.tsv", "WikiQACorpus/WikiQA-dev.tsv")
            elif name == "dialogues_002.json":
                (served / ds.name / name).write_text("[]")
            else:
                src = next((tiny / ds.name).rglob("*.*"))
                if ds.name == "multiwoz_2.2":
                    src = tiny / ds.name / "dev" / "dialogues_001.json"
                (served / ds.name / name).write_bytes(src.read_bytes())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("EDGEBENCH_DATASET_BASE_URL", f"http://127.0.0.1:{server.server_port}")
    try:
        build_workload(tmp_path / "a.jsonl", per_category=3, seed=1)
    finally:
        server.shutdown()
        server.server_close()
    cache = isolated_root / "build" / "datasets"
    assert (cache / "wikiqa" / "WikiQA-dev.tsv").is_file()
    build_workload(
        tmp_path / "b.jsonl", per_category=3, seed=1
    )  # server gone: served from the cache
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert len(load_workload(tmp_path / "a.jsonl")) == 15


def test_counting_drops_what_cannot_fit_and_stats(tiny, tmp_path, llama_bin_dir, vocab_gguf):
    tok = llama_bin_dir / "tokenize"
    counter = Counter(tok, vocab_gguf)
    task_prompts = [c.prompt for c in DATASETS["task-oriented"].candidates(tiny / "multiwoz_2.2")]
    n_ctx = (
        min(counter.count(task_prompts)) + OUTPUT_LIMITS["task-oriented"] - 1
    )  # no dialogue fits
    out = tmp_path / "w.jsonl"
    result = workloads(
        "build",
        "--from",
        str(tiny),
        "--per-category",
        "2",
        "--tokenizer",
        str(tok),
        "--vocab",
        str(vocab_gguf),
        "--n-ctx",
        str(n_ctx),
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:4] == ["category", "dataset", "candidates", "built"]
    assert lines[4].split()[:5] == ["task-oriented", "multiwoz_2.2", str(N), "0", str(N)]
    assert lines[1].split()[:5] == ["simple", "wikiqa", str(N), "2", "0"]
    assert (
        f"warning: task-oriented: 0 of 2 queries ({N} candidates, {N} too long for --n-ctx {n_ctx})"
        in lines
    )
    got = by_category(out)
    assert not got["task-oriented"]
    for q in load_workload(out):
        assert q.prompt_tokens_est == count_tokens(q.prompt, tok, vocab_gguf)
        assert q.prompt_tokens_est + q.max_tokens <= n_ctx
    stats = workloads("stats", str(out))
    assert stats.exit_code == 0, stats.output
    rows = [r.split() for r in stats.output.splitlines()]
    assert rows[0] == [
        "category",
        "queries",
        "mean",
        "prompt",
        "tok",
        "median",
        "min",
        "max",
        "output",
        "limit",
    ]
    est = sorted(q.prompt_tokens_est for q in got["simple"])
    assert rows[1] == [
        "simple",
        "2",
        f"{sum(est) / 2:.1f}",
        f"{sum(est) / 2:g}",
        str(est[0]),
        str(est[1]),
        "30",
    ]
    assert [r[0] for r in rows[1:]] == ["simple", "complex", "conversational", "contextual"]
    counter_z = build_workload(tmp_path / "z.jsonl", 1, 0, tiny, "zephyr", counter)
    assert all(r.built == 1 for r in counter_z)
    z = load_workload(tmp_path / "z.jsonl")[0]
    assert z.prompt.startswith("<|system|>\n") and "</s>\n<|user|>\n" in z.prompt
    assert z.prompt.endswith("</s>\n<|assistant|>\n") and z.meta["template"] == "zephyr"
    assert z.prompt_tokens_est == count_tokens(z.prompt, tok, vocab_gguf)


def test_missing_tokenizer_and_uncounted_stats(tiny, tmp_path, isolated_root):
    out = tmp_path / "w.jsonl"
    result = workloads("build", "--from", str(tiny), "--out", str(out))
    assert result.exit_code == 1
    assert f"not found at {isolated_root / 'build' / 'llama.cpp' / 'tokenize'}" in result.output
    assert "fix: make bootstrap" in result.output and "--no-count" in result.output
    result = workloads("build", "--from", str(tiny), "--out", str(out), "--no-count")
    assert result.exit_code == 0 and "not checked" in result.output
    result = workloads("stats", str(out))
    assert (
        result.exit_code == 1
        and "no prompt token counts" in result.output
        and "without --no-count" in result.output
    )


@needs_shared
def test_build_from_the_real_dataset_samples(tmp_path, llama_bin_dir, vocab_gguf):
    out = tmp_path / "study.jsonl"
    result = workloads(
        "build",
        "--from",
        str(SHARED),
        "--per-category",
        "12",
        "--seed",
        "0",
        "--out",
        str(out),
        "--tokenizer",
        str(llama_bin_dir / "tokenize"),
        "--vocab",
        str(vocab_gguf),
    )
    assert result.exit_code == 0, result.output
    got = by_category(out)
    assert [len(got[c]) for c in CATEGORIES] == [
        12,
        12,
        12,
        5,
        5,
    ]  # the samples hold 5 dialogues each
    assert all("\t" not in q.prompt and q.source["split"] == "dev" for q in got["simple"])
    assert all(q.prompt.endswith("?") for q in got["complex"])
    assert all("\x92" not in q.prompt and len(q.prompt.split()) >= 2 for q in got["conversational"])
    task = {q.source["record_id"]: q.prompt for q in got["task-oriented"]}
    assert task["SSNG0007.json"].startswith(
        INSTR.format("find a restaurant") + " <USER> I am looking for a Chinese"
    )
    assert task["MUL1170.json"].startswith(
        INSTR.format("find an attraction and find a hotel") + " <USER> "
    )
    for q in got["contextual"]:
        assert q.prompt.startswith("::context:: ") and " ::question:: " in q.prompt
        assert "CANNOTANSWER" not in q.prompt and q.source["licence"].startswith("MIT")
    assert all(q.prompt_tokens_est and q.prompt_tokens_est > 300 for q in got["contextual"])
    again = tmp_path / "again.jsonl"
    build_workload(again, 12, 0, SHARED, counter=Counter(llama_bin_dir / "tokenize", vocab_gguf))
    assert again.read_bytes() == out.read_bytes()
    stats = workloads("stats", str(out))
    assert [r.split()[:2] for r in stats.output.splitlines()[1:]] == [
        ["simple", "12"],
        ["complex", "12"],
        ["conversational", "12"],
        ["task-oriented", "5"],
        ["contextual", "5"],
    ]
