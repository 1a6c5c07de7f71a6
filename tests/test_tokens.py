from orchestrator.engine.vocab import token_pieces
from orchestrator.ggufile import read_header


def test_pieces_of_the_real_llama_vocabulary(vocab_gguf):
    meta, _ = read_header(vocab_gguf, tensors=False)
    tokens = meta["tokenizer.ggml.tokens"]
    pieces = token_pieces(meta)
    assert len(pieces) == 32000
    assert pieces[tokens.index("<s>")] == b""  # control tokens print nothing
    assert pieces[tokens.index("<0x0A>")] == b"\n"  # byte tokens print their raw byte
    assert pieces[tokens.index("\u2581the")] == b" the"  # the SentencePiece space mark becomes a space
