"""Samplers against real child processes: what they record, how regularly, at what cost."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from itertools import pairwise

import pytest
from waiting import wait_for

from orchestrator.sampling import ProcessSampler, Sampler

# Once told (after the sampler's first reading), touches 60 MiB (bytes * n writes every page, unlike
# a calloc'd bytearray), then spends one second of CPU: CPU time, not wall time, so that a loaded
# machine lengthens the run instead of shrinking what there is to see.
BUSY_CHILD = """
import sys, time
sys.stdin.readline()
block = b"x" * (60 << 20)
end = time.process_time() + 1.0
while time.process_time() < end:
    pass
"""

FIELDS = {
    "t_s", "dt_s", "rss_bytes", "cpu_pct", "cpu_pct_norm", "num_threads",
    "sys_cpu_pct", "sys_mem_used_bytes", "sys_mem_available_bytes",
}


@pytest.fixture
def thread_errors(monkeypatch) -> list:
    """Exceptions that escaped any thread during the test."""
    errors: list = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))
    return errors


@pytest.fixture(scope="module")
def busy_run():
    """One sampled run of BUSY_CHILD at 10 ms, shared by the tests that read it.

    The child is not reaped until the sampler has ended on its own, so the thread has to
    notice the zombie rather than be told to stop."""
    errors: list = []
    saved_hook = threading.excepthook
    threading.excepthook = lambda args: errors.append(args.exc_value)
    try:
        sampler = ProcessSampler(interval_s=0.01)
        t0 = time.perf_counter_ns()
        child = subprocess.Popen([sys.executable, "-c", BUSY_CHILD], stdin=subprocess.PIPE)
        sampler.start(child.pid, t0)
        assert wait_for(lambda: sampler._samples)
        child.stdin.close()  # EOF ends the child's readline: allocate now
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, left a zombie (not reaped)
        sampler._thread.join(timeout=60)  # a hang guard: a tick or two notices the zombie
        ended_alone = not sampler._thread.is_alive()
        samples = sampler.stop()
        _, _, usage = os.wait4(child.pid, 0)
        child.returncode = 0
    finally:
        threading.excepthook = saved_hook
    sampler.child_cpu_s = usage.ru_utime + usage.ru_stime  # what the kernel counted for the child
    return sampler, samples, ended_alone, errors


def test_process_sampler_sees_memory_and_cpu_of_a_real_child(busy_run):
    sampler, samples, _, _ = busy_run
    assert samples and all(set(s) == FIELDS for s in samples)
    assert samples[0]["rss_bytes"] < 50e6  # taken before the child was told to allocate
    assert max(s["rss_bytes"] for s in samples) > 50e6
    # The CPU the samples show adds up to what the kernel counted for the child (its start-up, before
    # the first sample, excepted): however little of a core a loaded machine gave it.
    seen_cpu_s = sum(s["cpu_pct"] / 100 * s["dt_s"] for s in samples if s["dt_s"] is not None)
    assert 0.5 * sampler.child_cpu_s <= seen_cpu_s <= sampler.child_cpu_s + 0.02, (seen_cpu_s, sampler.child_cpu_s)
    assert samples[0]["cpu_pct"] == 0.0 and samples[0]["dt_s"] is None
    busiest = max(samples, key=lambda s: s["cpu_pct"])
    assert busiest["cpu_pct_norm"] == pytest.approx(busiest["cpu_pct"] / sampler._ncpu, abs=0.01)
    assert all(s["num_threads"] >= 1 and s["sys_mem_available_bytes"] > 0 for s in samples)


def test_process_sampler_holds_10_ms_on_absolute_deadlines(busy_run):
    sampler, samples, _, _ = busy_run
    ts = [s["t_s"] for s in samples]
    assert all(b > a for a, b in pairwise(ts))
    dts = [s["dt_s"] for s in samples if s["dt_s"] is not None]
    info = sampler.info()
    print(f"\n10 ms sampler: achieved {info['achieved_interval_s']} s, missed_ticks={sampler.missed_ticks}")
    assert len(dts) == len(samples) - 1 >= 1
    # Every tick of the 10 ms grid is a sample or a missed tick, and a sample never comes before its
    # tick: the grid cannot run ahead of the clock (no burst), whatever the load. How often a busy
    # machine makes it miss is `make bench`'s figure, not a test's.
    assert (len(samples) - 1 + sampler.missed_ticks) * 0.01 <= ts[-1] - ts[0] + 0.01
    assert info["achieved_interval_s"] == pytest.approx(sum(dts) / len(dts), abs=1e-6)
    assert info["achieved_interval_s"] >= 0.01 * (1 - 1 / len(dts))
    assert info["name"] == "process" and info["interval_s"] == 0.01
    assert info["n_samples"] == len(samples)


def test_process_sampler_costs_little_cpu_at_10_ms(busy_run):
    sampler, samples, _, _ = busy_run
    cost = sampler.info()["cpu_time_s"] / samples[-1]["t_s"]
    per_tick_us = sampler.info()["cpu_time_s"] / len(samples) * 1e6
    print(f"\n10 ms sampler CPU cost: {cost:.1%} of one core, {per_tick_us:.0f} us per tick")
    assert cost > 0  # the figure itself is `make bench`'s (sampler_cpu_pct), measured on a quiet machine


def test_process_sampler_ends_quietly_when_the_process_exits(busy_run):
    sampler, samples, ended_alone, errors = busy_run
    assert ended_alone, "the thread kept running after its process became a zombie"
    assert errors == []
    assert sampler.stop() == samples  # idempotent
    assert sampler.stop() == samples


def test_process_sampler_on_a_reaped_process_records_nothing(thread_errors):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    sampler = ProcessSampler(interval_s=0.01)
    sampler.start(child.pid, time.perf_counter_ns())
    assert sampler.stop() == []
    assert sampler.info()["n_samples"] == 0
    assert thread_errors == []


def test_stop_wakes_a_slow_sampler_at_once(thread_errors):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        # an hour between ticks: a stop that waited for the next tick would leave the thread running
        sampler = ProcessSampler(interval_s=3600)
        sampler.start(child.pid, time.perf_counter_ns())
        thread = sampler._thread
        assert wait_for(lambda: sampler.n_samples >= 1 or len(sampler._samples) >= 1)
        samples = sampler.stop()
        assert not thread.is_alive()
    finally:
        child.kill()
        child.wait()
    assert len(samples) == 1 and sampler.info()["cpu_time_s"] > 0
    assert thread_errors == []


def test_a_stalled_tick_skips_missed_deadlines_instead_of_bursting(thread_errors):
    class StallsOnce(ProcessSampler):
        def _read(self, pid):
            sample = super()._read(pid)
            if len(self._samples) == 5:
                time.sleep(0.035)  # 3.5 intervals late
            return sample

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        sampler = StallsOnce(interval_s=0.01)
        sampler.start(child.pid, time.perf_counter_ns())
        assert wait_for(lambda: len(sampler._samples) >= 12)  # well past the stall at the 6th
        samples = sampler.stop()
    finally:
        child.kill()
        child.wait()
    assert sampler.missed_ticks >= 2
    # A burst would take more samples than the 10 ms grid has ticks between the first and the last
    # (a sample that woke late may sit close to the next one: that is one tick each, not a burst).
    ts = [s["t_s"] for s in samples]
    assert (len(samples) - 1 + sampler.missed_ticks) * 0.01 <= ts[-1] - ts[0] + 0.01, "caught up in a burst"
    assert thread_errors == []


def test_process_sampler_is_reused_per_query_but_never_watches_two_at_once():
    sampler = ProcessSampler(interval_s=0.5)
    assert sampler.stop() == []  # stop before start is harmless
    sampler.start(os.getpid(), time.perf_counter_ns())  # watches this process until stopped
    with pytest.raises(RuntimeError):
        sampler.start(os.getpid(), time.perf_counter_ns())
    assert wait_for(lambda: len(sampler._samples) >= 1)
    first = sampler.stop()
    sampler.start(os.getpid(), time.perf_counter_ns())  # the next query
    assert wait_for(lambda: len(sampler._samples) >= 1)
    second = sampler.stop()
    assert len(first) >= 1 and len(second) >= 1
    assert sampler.info()["n_samples"] == len(first) + len(second)  # run totals for the manifest
    with pytest.raises(ValueError):
        ProcessSampler(interval_s=0)


def test_the_base_sampler_records_nothing():
    sampler = Sampler()
    sampler.start(1, time.perf_counter_ns())
    assert sampler.stop() == [] and sampler.stop() == []
    assert sampler.info() == {"name": "null", "kind": "process"}
