"""Experiments: plans (which queries, output limits, sampling, warm-ups, repetitions) as data
files, the selection rules that turn a plan and a workload into run items, and the
bookkeeping of a multi-part experiment folder."""
