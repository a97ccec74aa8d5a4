"""CPU workers: freed memory stays during a cell (no page faults once warm); thread count."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Allocate, touch and free 64 MiB the way one stage call's activations come and go; print the
# minor page faults of five calls after twelve warm-up calls (glibc's heap settled within 2-9
# calls in repeated tries: aligned blocks leave remainders that take a few calls to coalesce).
_CALLS = """
import resource, sys, torch
from sdbench.runner.worker import apply_allocator
assert apply_allocator(sys.argv[1]) == sys.argv[1]
def call():
    torch.ones(16 * 1024 * 1024).sum()
for _ in range(12):
    call()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    call()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

PAGES_PER_CALL = 64 * 1024 * 1024 // 4096


def _faults_of_five_calls(mode: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", _CALLS, mode], capture_output=True, text=True, check=True
    )
    return int(result.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_the_default_allocator_faults_every_call_and_the_tuned_one_stops_it():
    # The control shows the test can fail: plain glibc maps the block fresh on every call.
    assert _faults_of_five_calls("default") >= 4 * PAGES_PER_CALL
    # Tuned (freed memory kept): no fresh pages once settled (one stray late settling call at most).
    assert _faults_of_five_calls("tuned") <= PAGES_PER_CALL


def test_sdbench_cpu_threads_sets_the_worker_threads_and_the_row_says_so(
    tiny_suite, tmp_path, monkeypatch
):
    import pyarrow.parquet as pq
    from rich.console import Console

    from sdbench.runner.run import run_suite

    monkeypatch.setenv("SDBENCH_CPU_THREADS", "1")
    suite = tiny_suite(matrix={"stage": ["unet"], "batch_size": [1], "precision": ["fp32"],
                               "attention": ["sdpa"]})  # fmt: skip
    outcome = run_suite(str(suite), tmp_path / "out", console=Console(quiet=True))
    rows = pq.read_table(outcome.path).to_pylist()
    assert [(r["status"], r["cpu_threads"], r["allocator"]) for r in rows] == [("ok", 1, "tuned")]
