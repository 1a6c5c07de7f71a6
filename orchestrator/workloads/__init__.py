"""Workloads: the query file format, the shipped default, and builders from public datasets."""
