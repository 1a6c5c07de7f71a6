import os
import subprocess
import sys

import pytest

from orchestrator.bootstrap import twin
from orchestrator.errors import UserError
from orchestrator.gguf_info import BLOCK_SIZES, read_info


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


def test_a_model_cut_short_is_refused_naming_the_missing_bytes(tiny_model, tmp_path):
    whole = tiny_model.read_bytes()
    assert read_info(tiny_model)["size_bytes"] == len(whole)  # the whole file passes
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(whole[:-1000])
    with pytest.raises(UserError) as err:
        read_info(cut)
    assert f"need {len(whole)} bytes, the file has {len(whole) - 1000} (1000 bytes missing" in err.value.message
    assert "--force model" in err.value.fix


def test_a_vocabulary_only_file_has_no_tensor_data_to_miss(vocab_gguf):
    assert read_info(vocab_gguf)["tensor_count"] == 0


def test_block_sizes_agree_with_the_gguf_package():
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    for type_id, sizes in BLOCK_SIZES.items():
        assert GGML_QUANT_SIZES[GGMLQuantizationType(type_id)] == sizes, type_id


def test_run_on_a_model_cut_short_stops_before_the_first_query(tiny_model, llama_bin_dir, tmp_path):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_model.read_bytes()[:-4096])
    res = subprocess.run([sys.executable, "-m", "orchestrator", "run", "--binary", str(llama_bin_dir / "main"),
                          "--model", str(cut), "--limit", "1", "--out", str(tmp_path / "out")],
                         env=dict(os.environ, EDGEBENCH_ROOT=str(tmp_path)), capture_output=True, text=True,
                         timeout=120)
    assert res.returncode not in (0, 3), res.stderr  # a UserError (its code is the run session's to set)
    assert "4096 bytes missing" in res.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
