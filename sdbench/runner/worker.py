"""The worker process: builds models once per group and measures cells sent by the manager.

Protocol: the manager writes one JSON request per line to stdin ({"cell": ..., "measure": ...});
the worker answers each with one JSON line on a private copy of the original stdout (fd 1 is
redirected to stderr so library prints cannot corrupt the protocol). The first line it writes is
{"hello": environment}. The worker ends when its stdin closes, and at once when the manager dies
(kill -9 included), so no orphan keeps a GPU or CPU busy.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Mapping

from sdbench.cell import Cell, Measure

GPU_COUNT_ENV = "SDBENCH_GPU_COUNT"  # set for workers pinned to one GPU: the run's GPU count
CPU_THREADS_ENV = "SDBENCH_CPU_THREADS"  # the user's choice of intra-op threads, else every core
ALLOCATOR_ENV = "SDBENCH_ALLOCATOR"  # the suite's [options] allocator, set by the executor
_allocator_in_use: str | None = None  # what configure_torch applied; every row records it


def configure_torch(allocator: str | None = None) -> int:
    """Quiet library logs, use every physical core on the CPU (or SDBENCH_CPU_THREADS) and set
    up the allocator (`apply_allocator`); returns the thread count."""
    import torch
    from diffusers.utils import logging as diffusers_logging

    global _allocator_in_use
    _allocator_in_use = apply_allocator(allocator or os.environ.get(ALLOCATOR_ENV) or "tuned")
    diffusers_logging.set_verbosity_error()
    threads = cpu_threads()
    torch.set_num_threads(threads)
    return threads


def apply_allocator(setting: str) -> str:
    """Apply a suite's `[options] allocator`; returns what the process really runs with.

    "tuned" keeps freed memory between calls (memory.keep_freed_memory: no mmap, no automatic
    trim), which makes CPU timings steadier and faster (the SD1.5 UNet step by ~20% on the dev
    VM); off glibc it cannot be applied and the answer is "default". "default" leaves the C library's allocator as it ships.
    """
    from sdbench.runner.memory import keep_freed_memory
    from sdbench.store.schema import ALLOCATORS

    if setting not in ALLOCATORS:
        raise ValueError(f"{ALLOCATOR_ENV}={setting!r}: not one of {', '.join(ALLOCATORS)}")
    if setting == "tuned" and keep_freed_memory():
        return "tuned"
    return "default"


def cpu_threads(environ: Mapping[str, str] = os.environ) -> int:
    """SDBENCH_CPU_THREADS when set (a positive integer), else every physical core."""
    import psutil

    from sdbench.errors import BadInput

    told = environ.get(CPU_THREADS_ENV, "").strip()
    if not told:
        return psutil.cpu_count(logical=False) or os.cpu_count() or 1
    if not told.isdigit() or int(told) < 1:
        raise BadInput(
            f'{CPU_THREADS_ENV}="{told}" is not a thread count. Set it to a positive integer '
            f"(e.g. {CPU_THREADS_ENV}=1 on a busy shared machine), or unset it to use every core."
        )
    return int(told)


def environment(device: str) -> dict:
    import diffusers
    import torch

    from sdbench.devices.backend import backend_for
    from sdbench.devices.detect import cpu_model

    return {
        "device_name": backend_for(device).name(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "cuda": torch.version.cuda or (f"rocm {torch.version.hip}" if torch.version.hip else None),
        "driver": _driver_version(),
        "cpu_model": cpu_model(),
        "gpu_count": gpu_count(),
        "cpu_threads": torch.get_num_threads(),
        "allocator": _allocator_in_use,
    }


def gpu_count() -> int:
    """The host's GPUs as the run saw them: a worker pinned to one GPU is told the count."""
    import torch

    told = os.environ.get(GPU_COUNT_ENV, "")
    if told.isdigit():
        return int(told)
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _driver_version() -> str | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
            return version.decode() if isinstance(version, bytes) else version
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no NVIDIA driver: the field is "not measured"
        return None


def serve(input_stream, output_stream, device: str) -> None:
    from sdbench.runner.measure import new_state, run_cell
    from sdbench.runner.memory import freeze_start_up_objects

    configure_torch()
    state = new_state(device)
    freeze_start_up_objects()
    _send(output_stream, {"hello": environment(device)})
    for line in input_stream:
        if not line.strip():
            continue
        request = json.loads(line)
        cell, measure = Cell.from_dict(request["cell"]), Measure(**request["measure"])
        begin = time.perf_counter()
        try:
            result = run_cell(cell, measure, state)
        except (
            Exception
        ) as error:  # a bug in sdbench itself: still one row, with the traceback tail
            result = {
                "status": "error",
                "error": f"sdbench internal error: {error!r}\n{traceback.format_exc(limit=-3)}",
            }
        result["cell_wall_s"] = time.perf_counter() - begin
        _send(output_stream, {"result": result})


def _send(stream, message: dict) -> None:
    stream.write(json.dumps(message, default=str) + "\n")
    stream.flush()


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:
    """Exit when the manager that started us goes away, even in the middle of a cell.

    Linux: the kernel sends SIGKILL when the parent dies (prctl PR_SET_PDEATHSIG). Everywhere: a
    watchdog thread checks once a second that the manager is still our parent.
    """
    manager_pid = int(os.environ.get("SDBENCH_MANAGER_PID") or os.getppid())
    if sys.platform.startswith("linux"):
        # Without prctl in this libc the watchdog below still works.
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != manager_pid:  # the manager died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == manager_pid:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watchdog").start()


def main() -> None:
    die_with_parent()
    faulthandler.enable()  # a segfault (a CUDA driver crash) leaves its Python stack on stderr
    device = sys.argv[1]
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything printed by libraries goes to stderr, which the manager keeps a tail of
    sys.stdout = sys.stderr
    serve(sys.stdin, protocol, device)


if __name__ == "__main__":
    main()
