"""The `edgebench` subcommands: each module parses options, calls library code and prints."""
