"""Inference engines behind one seam (base.py): the session asks an engine for an argv, then for a
measurement it returns as data. llama_main.py is llama.cpp `main`: argv, spawn on a pty, a
timestamped stream, parsed logs, token bytes, figures."""
