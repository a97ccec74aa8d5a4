"""What every harness benchmark shares: the machine description, medians, and the verdict line."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def machine(device: str = "cpu") -> dict:
    """Where a figure came from: host, CPU, cores, load at the start, torch, and the device."""
    from sdbench.devices.detect import cpu_model

    info = {
        "host": platform.node(),
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "device": device,
    }
    code = (
        "import json, sys, torch; d = sys.argv[1]; print(json.dumps({'torch': torch.__version__, "
        "'device_name': torch.cuda.get_device_name(d) if d.startswith('cuda') else None}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, device], capture_output=True, text=True, timeout=300
    )
    if result.returncode == 0:
        info.update(json.loads(result.stdout))
    return info


def print_machine(info: dict) -> None:
    device = info.get("device_name") or info["device"]
    print(
        f"machine: {info['host']}, {info['cpu_model']} ({info['logical_cpus']} logical CPUs, "
        f"load {info['load_avg_1m']} at start), python {info['python']}, "
        f"torch {info.get('torch')}, device {device}"
    )


def median(values: list[float]) -> float:
    return statistics.median(values)


def verdict(name: str, passed: bool, detail: str) -> int:
    """Print PASS/FAIL with the target and return the exit code (0 met, 1 missed)."""
    print(f"{'PASS' if passed else 'FAIL'} {name}: {detail}")
    return 0 if passed else 1


def child_env() -> dict[str, str]:
    """Environment for benchmark subprocesses: the repository importable, library logs quiet."""
    path = os.environ.get("PYTHONPATH")
    return {
        **os.environ,
        "PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO),
        "TRANSFORMERS_VERBOSITY": "error",
        "DIFFUSERS_VERBOSITY": "error",
    }
