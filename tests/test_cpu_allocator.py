"""CPU workers keep freed memory during a cell, so warmed-up calls do not fault pages in again."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Allocate, touch and free 64 MiB the way one stage call's activations come and go; print the
# minor page faults of five calls after three warm-up calls (glibc's heap settles in three).
_CALLS = """
import resource, sys, torch
if sys.argv[1] == "keep":
    from sdbench.runner.memory import keep_freed_memory
    assert keep_freed_memory()
def call():
    torch.ones(16 * 1024 * 1024).sum()
call(); call(); call()
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
def test_glibc_alone_faults_every_call_and_keep_freed_memory_stops_it():
    # The control shows the test can fail: plain glibc maps the block fresh on every call.
    assert _faults_of_five_calls("plain") >= 5 * PAGES_PER_CALL // 2
    assert _faults_of_five_calls("keep") < PAGES_PER_CALL // 10
