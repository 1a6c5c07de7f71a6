"""The run summary: statistics from raw records, and HTML that never trusts model output."""

from orchestrator import summary
from orchestrator.stats import by_category
from orchestrator.store import RunStore

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def record(qid, category, status="ok", **extra):
    base = {"query_id": qid, "category": category, "attempt": qid + "-a", "status": status,
            "ttft_s": 0.2, "tbt_s": [0.03, 0.05], "decode_tok_s": 25.0, "peak_rss_bytes": 800e6,
            "output_text": "fine", "validation": {"ok": True}}
    return base | extra


def test_per_category_rows_count_failures_and_pool_tbt():
    recs = [record("a", "simple"), record("b", "simple", ttft_s=0.4, tbt_s=[0.07]),
            record("c", "simple", status="timeout", peak_rss_bytes=900e6)]
    (row,) = by_category(recs, ("simple", "complex"))
    assert (row["n"], row["failures"]) == (3, 1)
    assert abs(row["ttft"]["p50"] - 0.3) < 1e-12  # failed queries are not in the timing figures
    assert row["tbt"]["n"] == 3 and row["tbt"]["max"] == 0.07
    assert row["peak_rss_bytes"] == 900e6  # a failed query's memory still counts


def test_html_escapes_model_output_and_error_text(tmp_path):
    manifest = {"run_id": "r1", "created_at": "now", "platform": {"hostname": "h", "cpu_model": "c",
                "cpu_count": 2, "profile": "host"}, "binary": {"path": "/b", "commit": "a33e6a0",
                "patch_state": "applied"}, "model": {"path": "/m", "file_type_name": "Q5_K_M", "block_count": 22,
                "synthetic": True, "twin_of": "TinyLlama"}}
    store = RunStore.create(tmp_path / "r1", manifest)
    store.append_query(record("q1", "simple", output_text=HOSTILE))
    store.append_query(record("q2", "simple", status="error", error=HOSTILE))
    records = store.read_queries()
    html = summary.write_html(store, summary.rows_for(records), records).read_text()
    assert "<script>" not in html and "<img" not in html
    assert html.count("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") == 2
    assert "synthetic timing twin" in html
