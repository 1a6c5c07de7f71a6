"""`edgebench workloads check|build|stats`."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator.cliopts import echo_rows, format_option
from orchestrator.workloads.schema import category_counts, load_workload


@click.group()
def workloads():
    """Workload files: check one, build the study's from its five datasets, show prompt lengths."""


@workloads.command()
@click.argument("file", type=click.Path(path_type=Path))
def check(file):
    """Validate a workload file (every line), print its query counts."""
    queries = load_workload(file)
    counts = ", ".join(f"{c} {n}" for c, n in category_counts(queries).items())
    click.echo(f"ok: {len(queries)} queries ({counts})")


@workloads.command()
@click.option(
    "--per-category",
    default=100,
    show_default=True,
    type=click.IntRange(min=1),
    help="Queries per category.",
)
@click.option(
    "--seed", default=0, show_default=True, type=int, help="Same seed, same file, byte for byte."
)
@click.option(
    "--out",
    "out",
    default="workloads/study.jsonl",
    show_default=True,
    type=click.Path(path_type=Path),
)
@click.option(
    "--from",
    "from_dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Local copies: DIR/wikiqa, DIR/squad_v2, DIR/friends, DIR/multiwoz_2.2, DIR/quac. "
    "Without it, the official files are downloaded into build/datasets/.",
)
@click.option(
    "--template",
    type=click.Choice(["raw", "zephyr"]),
    default="raw",
    show_default=True,
    help="raw: the prompt as is (the study's); zephyr: TinyLlama-Chat's chat format.",
)
@click.option(
    "--tokenizer",
    type=click.Path(path_type=Path),
    help="llama.cpp `tokenize` [build/llama.cpp/tokenize].",
)
@click.option(
    "--vocab",
    type=click.Path(path_type=Path),
    help="Vocabulary GGUF [build/models/ggml-vocab-llama.gguf].",
)
@click.option(
    "--no-count",
    is_flag=True,
    help="Skip token counting (prompt_tokens_est null, no --n-ctx check).",
)
@click.option(
    "--n-ctx",
    default=2048,
    show_default=True,
    type=click.IntRange(min=1),
    help="A query whose prompt tokens + output limit exceed this is dropped (counted in the summary).",
)
def build(per_category, seed, out, from_dir, template, tokenizer, vocab, no_count, n_ctx):
    """Build the study's workload from WikiQA, SQuAD v2.0, Friends, MultiWOZ 2.2 and QuAC."""
    from orchestrator.workloads.build import Counter, build_workload, format_summary

    counter = None
    if not no_count:
        from orchestrator.workloads import tokencount

        counter = Counter(tokenizer or tokencount.default_tokenizer(), vocab or tokencount.default_vocab())
        tokencount.check_tools(counter.tokenizer, counter.vocab)
    reports = build_workload(out, per_category, seed, from_dir, template, counter, n_ctx)
    click.echo(format_summary(reports, per_category, n_ctx, counted=counter is not None))
    total = sum(r.built for r in reports)
    click.echo(f"wrote {out}: {total} queries (seed {seed}, template {template})")


@workloads.command()
@click.argument("file", type=click.Path(path_type=Path))
@format_option()
def stats(file, fmt):
    """Per category: queries, mean/median/min/max prompt tokens, output limit."""
    from orchestrator.workloads.lengths import format_stats, stats_rows

    queries = load_workload(file)
    rows = stats_rows(queries)
    echo_rows(fmt, list(rows[0]) if rows else ["category"], rows, doc={"file": str(file), "categories": rows},
              table=lambda: click.echo(format_stats(queries, str(file))))
