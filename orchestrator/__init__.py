"""edgebench: what small language models cost on edge boards."""

__version__ = "0.1.0"
