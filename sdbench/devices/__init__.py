"""Which devices can be benchmarked here: detection runs in a subprocess so callers never import torch."""

from __future__ import annotations

import copy
import functools
import json
import os
import subprocess
import sys

from sdbench.errors import DeviceError

# The variables through which a GPU runtime or torch hides, reorders or finds devices. What
# detection sees depends only on the machine and on these, so a process detects once per value
# of them: a suite run, gpu-check and the run's host facts share one detection (each is a process
# that imports torch: seconds), and a caller that changes CUDA_VISIBLE_DEVICES sees the change.
DEVICE_VARIABLE_PREFIXES = (
    "CUDA_",
    "HIP_",
    "ROCR_",
    "ROCM_",
    "GPU_DEVICE_ORDINAL",
    "ZE_",
    "ONEAPI_",
    "SYCL_",
    "NVIDIA_",
    "PYTORCH_",
    "TORCH_",
    "LD_LIBRARY_PATH",
)


def present_devices() -> list[dict]:
    """Every device torch sees (CPU first), as dicts: id, kind, name, memory_bytes, ..."""
    variables = tuple(
        sorted(item for item in os.environ.items() if item[0].startswith(DEVICE_VARIABLE_PREFIXES))
    )
    return copy.deepcopy(_detect(variables))


@functools.lru_cache(maxsize=16)
def _detect(variables: tuple[tuple[str, str], ...]) -> list[dict]:
    """The detection subprocess's answer under `variables` (a failure is raised, not cached)."""
    result = subprocess.run(
        [sys.executable, "-m", "sdbench.devices.detect"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise DeviceError(
            f"Device detection failed (is torch installed in this environment?):\n{tail}"
        )
    return json.loads(result.stdout)


def forget_detected_devices() -> None:
    """Detect afresh on the next call (for a process that outlives a device being plugged in)."""
    _detect.cache_clear()
