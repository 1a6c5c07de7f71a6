from orchestrator.bootstrap import twin
from orchestrator.gguf_info import read_info


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
