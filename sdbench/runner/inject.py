"""Fault injection for tests and harness checks: make chosen cells crash, hang, OOM or output NaN.

Set SDBENCH_INJECT to a JSON object mapping a substring of a cell's label (or its cell_id) to a
fault: "segfault", "kill", "hang", "oom", "error" or "nan". Unset in normal runs.
"""

from __future__ import annotations

import json
import os
import signal
import time

import torch

from sdbench.cell import Cell

FAULTS = ("segfault", "kill", "hang", "oom", "error", "nan")


def fault_for(cell: Cell) -> str | None:
    """The fault SDBENCH_INJECT names for this cell; a misspelt fault is an error, not a no-op."""
    raw = os.environ.get("SDBENCH_INJECT")
    if not raw:
        return None
    for pattern, fault in json.loads(raw).items():
        if pattern == cell.cell_id or pattern in cell.label():
            if fault not in FAULTS:
                raise ValueError(f"SDBENCH_INJECT: unknown fault {fault!r}; use one of {FAULTS}")
            return fault
    return None


def trigger(fault: str) -> None:
    """Act out a fault that happens while a cell runs ("nan" is applied to the output instead)."""
    if fault == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif fault == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif fault == "hang":
        while True:
            time.sleep(3600)
    elif fault == "oom":
        raise torch.OutOfMemoryError("injected: CUDA out of memory. Tried to allocate 20.00 GiB")
    elif fault == "error":
        raise RuntimeError("injected failure")
