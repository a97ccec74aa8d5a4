"""Peak memory of one cell: the allocator's peaks on accelerators, the process's peak RSS on the CPU.

On Linux the peak RSS (VmHWM) is reset per cell by writing 5 to /proc/self/clear_refs, so each
cell gets its own peak rather than the process's lifetime maximum.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
from pathlib import Path

import psutil
import torch

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def _device_module(device: str):
    kind = device.split(":")[0]
    return {
        "cuda": getattr(torch, "cuda", None),
        "xpu": getattr(torch, "xpu", None),
        "mps": getattr(torch, "mps", None),
    }.get(kind)


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_TRIM_NEVER = 2**31 - 1  # mallopt takes an int: trim only when 2 GiB lie free at the top


def keep_freed_memory() -> bool:
    """Keep freed heap memory in the process during a cell, as jemalloc or tcmalloc setups do.

    glibc maps each large block fresh and hands freed memory back to the OS at once, so every
    timed call of a stage faulted its activations in again: BK-SDM-Tiny's 256 px UNet step took
    25,000 page faults per call as the process's first cell and ~0 as a later one, 10% slower,
    so timings depended on cell order. With no mmap for big blocks and no automatic trimming a
    warmed-up call faults nothing; `release` still trims between cells. Returns False off glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_MAX, 0) and libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_NEVER))
    except (OSError, AttributeError):
        return False


def _trim_heap() -> None:
    """Hand freed heap pages back to the OS (glibc keeps them), so RSS drops to what is in use."""
    # Not glibc: RSS may stay high after frees, and peaks are then upper bounds.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def release(device: str) -> None:
    """Give cached blocks back before the next cell so its peak is its own."""
    gc.collect()
    _trim_heap()
    module = _device_module(device)
    if module is not None and hasattr(module, "empty_cache"):
        module.empty_cache()


def reset_peaks(device: str) -> None:
    release(device)
    kind = device.split(":")[0]
    if kind in ("cuda", "xpu"):
        _device_module(device).reset_peak_memory_stats(device)
    with contextlib.suppress(OSError):
        _CLEAR_REFS.write_text("5")


def _peak_rss_bytes() -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return psutil.Process().memory_info().rss


def peaks(device: str) -> dict[str, int | None]:
    kind = device.split(":")[0]
    result: dict[str, int | None] = {
        "peak_mem_allocated_bytes": None,
        "peak_mem_reserved_bytes": None,
        "peak_rss_bytes": _peak_rss_bytes(),
    }
    if kind in ("cuda", "xpu"):
        module = _device_module(device)
        result["peak_mem_allocated_bytes"] = int(module.max_memory_allocated(device))
        result["peak_mem_reserved_bytes"] = int(module.max_memory_reserved(device))
    elif kind == "mps":
        # MPS has no peak counter: the driver's current allocation after the cell is a lower bound.
        result["peak_mem_reserved_bytes"] = int(torch.mps.driver_allocated_memory())
    return result


def is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, torch.OutOfMemoryError | MemoryError):
        return True
    text = str(error)
    return (
        "out of memory" in text.lower()
        or "can't allocate memory" in text
        or "DefaultCPUAllocator" in text
    )
