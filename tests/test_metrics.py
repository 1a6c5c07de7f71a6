"""Byte-exact attribution of the stream to tokens, and the figures built on it."""

import pytest

from orchestrator.engine.metrics import attribute, stream_figures, validate
from orchestrator.stats import percentile

MS = 1_000_000


def test_echo_and_tokens_split_by_bytes_not_chunks():
    pieces = [b" caf", b"\xc3\xa9", b" ok"]
    # echo in one chunk; the two-byte character split over two chunks; the last token joined to nothing
    chunks = [(10 * MS, b" hi there"), (50 * MS, b" caf\xc3"), (60 * MS, b"\xa9"), (90 * MS, b" ok")]
    a = attribute(chunks, pieces)
    assert a["matched"] and a["echo_bytes"] == len(b" hi there")
    assert a["t_echo_ns"] == 10 * MS
    assert a["t_tok_ns"] == [50 * MS, 60 * MS, 90 * MS]


def test_two_tokens_read_as_one_chunk_share_its_arrival():
    a = attribute([(5 * MS, b" q"), (20 * MS, b" a b"), (30 * MS, b" c")], [b" a", b" b", b" c"])
    assert a["t_tok_ns"] == [20 * MS, 20 * MS, 30 * MS]


def test_empty_piece_takes_the_previous_tokens_time():
    a = attribute([(1 * MS, b" p"), (4 * MS, b" x"), (9 * MS, b" y")], [b" x", b"", b" y"])
    assert a["t_tok_ns"] == [4 * MS, 4 * MS, 9 * MS] and a["empty_pieces"] == 1


def test_stream_that_does_not_end_with_the_output_is_flagged():
    a = attribute([(1 * MS, b" p"), (2 * MS, b" zz")], [b" x"])
    assert a["matched"] is False


def test_figures_follow_the_definitions():
    fig = stream_figures(0, 200 * MS, [500 * MS, 540 * MS, 600 * MS], 700 * MS, prompt_tokens=30)
    assert fig["load_s"] == pytest.approx(0.2)
    assert fig["ttft_s"] == pytest.approx(0.3)
    assert fig["cold_ttft_s"] == pytest.approx(0.5)
    assert fig["tbt_s"] == pytest.approx([0.04, 0.06])  # TTFT is never part of it
    assert fig["tpot_s"] == pytest.approx(0.05)
    assert fig["total_s"] == pytest.approx(0.7)
    assert fig["prefill_tok_s"] == pytest.approx(100)


def test_tokens_read_together_give_zero_gaps_and_no_rate():
    # a starved reader (a busy core, a twin decoding in microseconds) reads every later token at once
    fig = stream_figures(0, 200 * MS, [500 * MS, 510 * MS, 510 * MS, 510 * MS], 700 * MS, prompt_tokens=30)
    assert fig["tpot_s"] == pytest.approx(10 / 3 / 1000)
    fig = stream_figures(0, 200 * MS, [500 * MS] * 4, 700 * MS, prompt_tokens=30)
    assert fig["tbt_s"] == [0.0, 0.0, 0.0] and fig["tpot_s"] == 0.0
    assert fig["decode_tok_s"] is None  # not inf, not a crash
    # the echo and the first token in one read: TTFT 0 and no prefill rate
    fig = stream_figures(0, 200 * MS, [200 * MS, 240 * MS], 700 * MS, prompt_tokens=30)
    assert fig["ttft_s"] == 0.0 and fig["cold_ttft_s"] == fig["load_s"] and "prefill_tok_s" not in fig


def test_validation_flags_a_stream_that_disagrees_with_llama_timings():
    fig = stream_figures(0, 200 * MS, [500 * MS, 540 * MS, 580 * MS], 700 * MS, prompt_tokens=30)
    attributed = {"matched": True}
    good = {"n_eval": 2, "n_sample": 3, "t_sample_us": 300, "t_p_eval_us": 299_900, "t_eval_us": 79_800}
    v = validate(fig, good, 3, attributed)
    assert v["ok"], v
    slow_stream = dict(good, t_eval_us=40_000)  # llama.cpp says decode took half as long as the stream shows
    v = validate(fig, slow_stream, 3, attributed)
    assert v["ok"] is False and v["checks"]["tbt_mean"]["ok"] is False
    miscounted = validate(fig, dict(good, n_eval=5), 3, attributed)
    assert miscounted["checks"]["token_count"]["ok"] is False


def test_percentile_interpolates_like_numpy():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([10], 90) == 10
    assert percentile(list(range(101)), 99) == 99
    assert percentile([], 50) is None
