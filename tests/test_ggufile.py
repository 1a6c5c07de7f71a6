import pytest

from orchestrator.bootstrap import twin
from orchestrator.errors import UserError
from orchestrator.ggufile import TYPE_SIZES, read_info


def test_tiny_twin_is_tinyllama_shaped_with_the_real_vocabulary(tiny_model):
    info = read_info(tiny_model)
    spec = twin.TINY
    assert info["architecture"] == "llama"
    assert (info["block_count"], info["embedding_length"], info["head_count"], info["head_count_kv"],
            info["feed_forward_length"]) == (spec.n_layer, spec.n_embd, spec.n_head, spec.n_head_kv, spec.n_ff)
    assert info["file_type_name"] == "Q5_K_M"
    assert info["vocab_size"] == 32000
    assert info["synthetic"] is True


def test_full_twin_shapes_give_tinyllamas_parameter_count():
    shapes = twin._tensor_shapes(twin.TINYLLAMA, 32000)
    n = sum(__import__("math").prod(s) for _, s in shapes)
    assert 1_099_000_000 < n < 1_101_000_000  # TinyLlama-1.1B: 1,100,048,384 parameters


def test_a_complete_model_passes_the_length_check(tiny_model):
    assert read_info(tiny_model)["size_bytes"] == tiny_model.stat().st_size


def test_a_model_cut_short_is_refused_naming_the_missing_bytes(tiny_model, tmp_path):
    cut = tmp_path / "cut.gguf"
    data = tiny_model.read_bytes()
    cut.write_bytes(data[:-3000])
    with pytest.raises(UserError) as err:
        read_info(cut)
    assert f"ends at byte {len(data)} but the file has {len(data) - 3000} bytes (3000 bytes missing)" in str(err.value)


def test_tensor_sizes_agree_with_the_gguf_package():
    from gguf import GGML_QUANT_SIZES

    shared = {int(t): v for t, v in GGML_QUANT_SIZES.items() if int(t) in TYPE_SIZES}
    assert len(shared) >= 14  # F32 .. Q8_K at least
    assert {t: TYPE_SIZES[t] for t in shared} == shared


def test_run_refuses_a_model_cut_short_before_the_first_query(llama_bin_dir, tiny_model, isolated_root):
    from click.testing import CliRunner

    from orchestrator.cli import main

    cut = isolated_root / "cut.gguf"
    cut.write_bytes(tiny_model.read_bytes()[:-4096])
    out = isolated_root / "out"
    res = CliRunner().invoke(main, ["run", "--binary", str(llama_bin_dir / "main"), "--model", str(cut),
                                    "--limit", "1", "--reports-dir", str(out)])
    assert res.exit_code != 0  # before this check, main died with SIGSEGV on every query and the run exited 0
    assert "is cut short" in res.output and "(4096 bytes missing)" in res.output
    assert not list(out.rglob("queries.jsonl"))  # no query ran
