"""List the devices torch can run on, with name, memory and capability (imports torch)."""

from __future__ import annotations

import json
import os
import platform

import psutil
import torch

from sdbench.devices.backend import open_backend


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_info() -> dict:
    return {
        "id": "cpu",
        "kind": "cpu",
        "name": cpu_model(),
        "memory_bytes": psutil.virtual_memory().total,
        "cores": psutil.cpu_count(logical=False) or os.cpu_count(),
        "threads": os.cpu_count(),
        "compute_capability": None,
        "backend": "cpu",
    }


def accelerator_ids() -> list[str]:
    """Every accelerator torch can run on here: CUDA/ROCm GPUs, then MPS, then XPU."""
    ids = (
        [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    )
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        ids.append("mps")
    if hasattr(torch, "xpu") and torch.xpu.is_available():
        ids += [f"xpu:{i}" for i in range(torch.xpu.device_count())]
    return ids


def list_devices() -> list[dict]:
    """The CPU, then each accelerator's facts as its device backend reports them."""
    return [cpu_info(), *(open_backend(d, torch).facts() for d in accelerator_ids())]


if __name__ == "__main__":
    print(json.dumps(list_devices()))
