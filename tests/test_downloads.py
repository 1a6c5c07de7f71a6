"""The bootstrap model step against a local HTTP server that misbehaves: a download that is
dropped mid-body or answered 503 ends with the real (here: a small fake) model, complete and
checked, never the timing twin; a wrong length is refused; only a host that does not answer
at all gives the twin, and the ledger says so."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from flaky_server import FlakyServer

from orchestrator import net
from orchestrator.bootstrap import model as model_step
from orchestrator.bootstrap.ledger import Ledger
from orchestrator.bootstrap.steps import Context, Options, run_steps
from orchestrator.errors import UserError


def fake_tinyllama(path: Path) -> bytes:
    """A small GGUF that says what TinyLlama-1.1B-Chat Q5_K_M says about itself, with one
    256 KiB tensor so that 'half the body' is a real cut through the data."""
    from gguf import GGUFWriter

    w = GGUFWriter(path, "llama")
    w.add_name("fake TinyLlama for download tests")
    w.add_file_type(17)  # Q5_K_M
    w.add_context_length(2048)
    w.add_embedding_length(2048)
    w.add_block_count(22)
    w.add_feed_forward_length(5632)
    w.add_head_count(32)
    w.add_head_count_kv(4)
    w.add_tensor("pad.weight", np.arange(64 * 1024, dtype=np.float32))
    w.write_header_to_file(path)
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path.read_bytes()


@pytest.fixture(scope="module")
def payload(tmp_path_factory) -> bytes:
    return fake_tinyllama(tmp_path_factory.mktemp("fake") / "fake.gguf")


@pytest.fixture
def served(payload, monkeypatch):
    """Start a server with a plan; the model step is pointed at it with its digest pinned."""
    servers = []
    monkeypatch.setattr(net, "BACKOFF_S", 0.01)

    def start(plan, pin_digest=True):
        srv = FlakyServer(payload, plan)
        servers.append(srv)
        monkeypatch.setenv("EDGEBENCH_MODEL_URL", srv.url)
        if pin_digest:
            monkeypatch.setenv("EDGEBENCH_MODEL_SHA256", hashlib.sha256(payload).hexdigest())
        else:
            monkeypatch.delenv("EDGEBENCH_MODEL_SHA256", raising=False)
        return srv

    yield start
    for srv in servers:
        srv.close()


def bootstrap_model(root: Path, cache: Path, **options):
    """Run the model step as `edgebench bootstrap` does; return (ledger entry or None, log lines)."""
    lines: list[str] = []
    opts = Options(root=root, cache=cache, **options)
    ctx = Context(opts, Ledger(opts.build / "ledger.json"), {}, log=lines.append)
    try:
        run_steps([model_step.Model()], ctx)
    finally:
        ledger = opts.build / "ledger.json"
        entry = json.loads(ledger.read_text())["steps"].get("model") if ledger.exists() else None
    return entry, lines


def no_twin_in(cache: Path) -> bool:
    return not list((cache / "models").glob("*twin*")) if (cache / "models").exists() else True


@pytest.mark.parametrize("plan", [["drop", "ok"], ["drop", "no-range"], [503, 503, 503, "ok"]],
                         ids=["dropped-then-resumed", "dropped-then-restarted", "503-three-times"])
def test_flaky_download_ends_with_the_checked_model_never_the_twin(served, payload, tmp_path, plan):
    srv = served(plan)
    entry, lines = bootstrap_model(tmp_path / "root", tmp_path / "cache")
    assert entry["source"] == "huggingface" and entry["fallback_reason"] is None
    assert entry["url"] == srv.url
    assert entry["sha256"] == hashlib.sha256(payload).hexdigest() == entry["sha256_pinned"]
    assert entry["synthetic"] is False and entry["gguf"]["block_count"] == 22
    assert Path(entry["path"]).read_bytes() == payload
    assert len(srv.seen) == len(plan)
    assert no_twin_in(tmp_path / "cache")
    assert any(line.startswith("warning: model: the real TinyLlama") and "checked" in line for line in lines)


def test_a_second_bootstrap_takes_the_model_from_the_cache_without_a_request(served, tmp_path):
    srv = served(["ok"])
    bootstrap_model(tmp_path / "root1", tmp_path / "cache")
    entry, lines = bootstrap_model(tmp_path / "root2", tmp_path / "cache")
    assert entry["source"] == "cache"
    assert len(srv.seen) == 1
    assert any("already in" in line for line in lines)


def test_content_length_that_does_not_match_the_body_is_refused_not_twinned(served, tmp_path):
    srv = served(["lie"])
    with pytest.raises(UserError, match=f"downloading {srv.url} failed 5 times"):
        bootstrap_model(tmp_path / "root", tmp_path / "cache")
    assert Ledger(tmp_path / "root" / "build" / "ledger.json").get("model") is None
    assert not (tmp_path / "cache" / "models" / model_step.MODEL_FILE).exists()
    assert no_twin_in(tmp_path / "cache")


def test_without_an_override_the_pinned_size_refuses_another_file_at_once(served, payload, tmp_path):
    srv = served(["ok"], pin_digest=False)
    with pytest.raises(UserError, match=f"announces {len(payload)} bytes, but the pinned file has 783017344"):
        bootstrap_model(tmp_path / "root", tmp_path / "cache")
    assert len(srv.seen) == 1
    assert no_twin_in(tmp_path / "cache")


def test_the_default_model_is_a_pinned_revision_with_its_digest(monkeypatch):
    monkeypatch.delenv("EDGEBENCH_MODEL_URL", raising=False)
    monkeypatch.delenv("EDGEBENCH_MODEL_SHA256", raising=False)
    url = model_step.model_url()
    assert "/resolve/main/" not in url
    assert model_step._revision(url) == model_step.HF_REVISION and len(model_step.HF_REVISION) == 40
    assert model_step.model_pin() == (model_step.MODEL_SHA256, 783017344)
    monkeypatch.setenv("EDGEBENCH_MODEL_SHA256", "skip")
    assert model_step.model_pin() == (None, None)


def test_model_source_download_refuses_a_host_that_does_not_answer(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEBENCH_MODEL_URL", "http://127.0.0.1:9/model.gguf")
    with pytest.raises(UserError) as err:
        bootstrap_model(tmp_path / "root", tmp_path / "cache", model_source="download")
    assert "does not answer" in err.value.message and err.value.fix.startswith("--model-source twin")


@pytest.mark.slow
def test_host_that_does_not_answer_gives_the_twin_with_the_warning_in_the_ledger(
    monkeypatch, tmp_path, llama_bin_dir, vocab_gguf
):
    monkeypatch.setenv("EDGEBENCH_MODEL_URL", "http://127.0.0.1:9/model.gguf")
    root = tmp_path / "root"
    llama = root / "build" / "llama.cpp"
    (llama / "models").mkdir(parents=True)
    (llama / "quantize").symlink_to(Path(llama_bin_dir) / "quantize")
    (llama / "models" / "ggml-vocab-llama.gguf").symlink_to(vocab_gguf)
    entry, lines = bootstrap_model(root, tmp_path / "cache", twin="tiny")
    assert entry["source"] == "twin" and entry["synthetic"] is True
    assert "127.0.0.1:9 does not answer" in entry["fallback_reason"]
    assert "http://127.0.0.1:9/model.gguf" in entry["fallback_reason"]
    warning = [line for line in lines if line.startswith("warning: model:")]
    assert len(warning) == 1 and "Hugging Face is unreachable" in warning[0] and "timing twin" in warning[0]


def test_provenance_for_the_manifest_comes_from_the_ledger_only_for_the_same_file(served, payload, tmp_path):
    srv = served(["ok"])
    entry, _ = bootstrap_model(tmp_path / "root", tmp_path / "cache")
    ledger = tmp_path / "root" / "build" / "ledger.json"
    got = model_step.provenance(hashlib.sha256(payload).hexdigest(), ledger)
    assert got == {"source": "huggingface", "fallback_reason": None, "url": srv.url, "revision": None}
    assert model_step.provenance("0" * 64, ledger) == {"source": "user", "fallback_reason": None}
    assert model_step.provenance(entry["sha256"], tmp_path / "nowhere.json")["source"] == "user"
