"""The `edgebench` subcommands: each parses options, calls library code, and prints."""
