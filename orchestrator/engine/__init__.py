"""The llama.cpp `main` adapter: argv, spawn on a pty, timestamped stream, parsed logs, and
one immutable record per query."""
