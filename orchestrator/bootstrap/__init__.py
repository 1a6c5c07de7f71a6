"""`edgebench bootstrap`: ordered, resumable steps that leave a patched llama.cpp and a model."""
