"""The click commands of `edgebench`: one module per top-level command; they parse and print."""
