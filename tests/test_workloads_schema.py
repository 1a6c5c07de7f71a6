"""The workload file format, `edgebench workloads check`, and the shipped default workload."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.errors import UserError
from orchestrator.packaged import default_workload
from orchestrator.workloads.schema import (
    CATEGORIES,
    OUTPUT_LIMITS,
    Query,
    dumps_line,
    load_workload,
)
from orchestrator.workloads.tokencount import count_tokens

DEFAULT = default_workload()


def line(**fields) -> str:
    base = {"id": "q1", "category": "simple", "prompt": "Why?", "max_tokens": 30}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...})


def test_query_round_trips_through_a_line(tmp_path):
    q = Query(
        "a",
        "contextual",
        'say "hi" \\ café',
        50,
        source={"dataset": "x"},
        meta={"k": 1},
        prompt_tokens_est=7,
    )
    path = tmp_path / "w.jsonl"
    path.write_text(dumps_line(q) + "\n\n", encoding="utf-8")
    assert load_workload(path) == [q]
    assert 'café"' in path.read_text(encoding="utf-8")  # UTF-8 kept, not \u-escaped


def test_every_bad_line_is_reported_with_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    lines = [
        line(id="ok"),
        "",
        "{not json",
        line(id="x", category="poetry"),
        line(id="ok"),
        line(id=..., prompt=..., max_tokens="30"),
        line(id="e", prompt="   "),
        line(id="u", colour="red"),
        line(id="z", max_tokens=0),
        "[1, 2]",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(UserError) as info:
        load_workload(path)
    msg = info.value.format_message()
    expected = [
        f"{path}:3: bad JSON",
        f"{path}:4: unknown category 'poetry'",
        f"{path}:5: duplicate id 'ok' (first on line 1)",
        f"{path}:6: missing field 'id'",
        f"{path}:6: missing field 'prompt'",
        f"{path}:6: field 'max_tokens' must be integer, got string",
        f"{path}:7: empty prompt",
        f"{path}:8: unknown field 'colour'",
        f"{path}:9: max_tokens must be positive, got 0",
        f"{path}:10: expected a JSON object, got array",
    ]
    for text in expected:
        assert text in msg
    assert f":{2}:" not in msg  # the blank line is fine
    assert "fix: " in msg and "edgebench workloads check" in msg


def test_nul_in_prompt_and_missing_file_are_user_errors(tmp_path):
    path = tmp_path / "nul.jsonl"
    path.write_text(line(prompt="a\u0000b") + "\n")
    with pytest.raises(UserError, match=r"nul.jsonl:1: prompt contains a NUL"):
        load_workload(path)
    with pytest.raises(UserError, match="does not exist"):
        load_workload(tmp_path / "absent.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(UserError, match="no queries"):
        load_workload(tmp_path / "empty.jsonl")


def test_check_command_prints_counts_or_error_with_exit_1(tmp_path):
    result = CliRunner().invoke(main, ["workloads", "check", str(DEFAULT)])
    assert result.exit_code == 0, result.output
    assert result.output == (
        "ok: 50 queries (simple 10, complex 10, conversational 10, "
        "task-oriented 10, contextual 10)\n"
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text(line() + "\n" + line() + "\n")
    result = CliRunner().invoke(main, ["workloads", "check", str(bad)])
    assert result.exit_code == 1
    assert f"error: {bad}: 1 problem(s)" in result.output
    assert f"{bad}:2: duplicate id 'q1' (first on line 1)" in result.output
    assert "fix: " in result.output


def test_default_workload_has_the_study_shapes():
    queries = load_workload(DEFAULT)
    assert [q.category for q in queries] == [c for c in CATEGORIES for _ in range(10)]
    for q in queries:
        assert q.max_tokens == OUTPUT_LIMITS[q.category]
        assert q.source == {"dataset": "edgebench-default", "licence": "MIT"}
        assert q.prompt_tokens_est and q.prompt_tokens_est + q.max_tokens <= 2048
    by = {c: [q for q in queries if q.category == c] for c in CATEGORIES}
    task = re.compile(
        r"^This is a bot helping users to [a-z ,]+\. Given the dialog context, please "
        r"generate a relevant system response for the user:( <USER> [^<]+){2,4}$"
    )
    assert all(task.match(q.prompt) for q in by["task-oriented"])
    ctx = re.compile(r"^::context:: .{600,} ::question:: [^:]+\?$")
    assert all(ctx.match(q.prompt) for q in by["contextual"])
    assert all(200 <= q.prompt_tokens_est <= 350 for q in by["contextual"])
    assert all("\n" not in q.prompt and len(q.prompt) < 200 for q in by["conversational"])
    hostile = [q.prompt for q in by["simple"] + by["conversational"]]
    for needle in ('"', "\\", "$(", "café", "naïve", "東京"):
        assert any(needle in p for p in hostile), needle


def test_default_token_counts_match_the_real_tokenizer(llama_bin_dir, vocab_gguf):
    queries = load_workload(DEFAULT)
    for q in queries[::5]:  # one in five: every category, hostile prompts included
        assert (
            count_tokens(q.prompt, llama_bin_dir / "tokenize", vocab_gguf) == q.prompt_tokens_est
        ), q.id


def test_stats_as_json_is_one_object_with_the_tables_figures():
    from click.testing import CliRunner

    from orchestrator.cli import main

    table = CliRunner().invoke(main, ["workloads", "stats", str(DEFAULT)])
    doc = json.loads(CliRunner().invoke(main, ["workloads", "stats", str(DEFAULT), "--format", "json"]).stdout)
    assert doc["file"] == str(DEFAULT) and [r["category"] for r in doc["categories"]] == list(CATEGORIES)
    simple = doc["categories"][0]
    assert simple["n"] == 10 and simple["max_tokens"] == 30
    assert f"{simple['mean']:.1f}" in table.output
