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

from sdbench.devices.backend import backend_for

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


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


def freeze_start_up_objects() -> None:
    """Leave what the imports built out of every later collection (gc.freeze).

    torch, diffusers and transformers leave ~450,000 tracked objects that live as long as the
    worker; `release` collects before every cell, and each full collection walked all of them
    (about 0.4 s on a quiet 2-core VM, 2.5 s under load: more than a tiny model's whole cell).
    Call once, after the imports and before any model is built, so models stay collectable.
    """
    gc.collect()
    gc.freeze()


def release(device: str) -> None:
    """Give cached blocks back before the next cell so its peak is its own."""
    gc.collect()
    _trim_heap()
    backend_for(device).empty_cache()


def reset_peaks(device: str) -> None:
    release(device)
    backend_for(device).reset_peaks()
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
    """The device allocator's peaks (null where it keeps none) and the process's peak RSS."""
    return {**backend_for(device).peaks(), "peak_rss_bytes": _peak_rss_bytes()}


def is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, torch.OutOfMemoryError | MemoryError):
        return True
    text = str(error)
    return (
        "out of memory" in text.lower()
        or "can't allocate memory" in text
        or "DefaultCPUAllocator" in text
    )
