"""List the devices torch can run on, with name, memory and capability (imports torch)."""

from __future__ import annotations

import json
import os
import platform

import psutil
import torch


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


def cuda_infos() -> list[dict]:
    if not torch.cuda.is_available():
        return []
    backend = "rocm" if torch.version.hip else "cuda"
    infos = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        infos.append(
            {
                "id": f"cuda:{index}",
                "kind": "cuda",
                "name": props.name,
                "memory_bytes": props.total_memory,
                "compute_capability": f"{props.major}.{props.minor}",
                "multiprocessors": props.multi_processor_count,
                "backend": backend,
            }
        )
    return infos


def other_infos() -> list[dict]:
    infos = []
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        infos.append(
            {
                "id": "mps",
                "kind": "mps",
                "name": f"Apple {platform.machine()} GPU (MPS)",
                "memory_bytes": psutil.virtual_memory().total,
                "compute_capability": None,
                "backend": "mps",
            }
        )
    if hasattr(torch, "xpu") and torch.xpu.is_available():
        for index in range(torch.xpu.device_count()):
            props = torch.xpu.get_device_properties(index)
            infos.append(
                {
                    "id": f"xpu:{index}",
                    "kind": "xpu",
                    "name": props.name,
                    "memory_bytes": props.total_memory,
                    "compute_capability": None,
                    "backend": "xpu",
                }
            )
    return infos


def list_devices() -> list[dict]:
    return [cpu_info(), *cuda_infos(), *other_infos()]


if __name__ == "__main__":
    print(json.dumps(list_devices()))
