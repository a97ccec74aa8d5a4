"""Which devices can be benchmarked here: detection runs in a subprocess so callers never import torch."""

from __future__ import annotations

import json
import subprocess
import sys

from sdbench.errors import DeviceError


def present_devices() -> list[dict]:
    """Every device torch sees (CPU first), as dicts: id, kind, name, memory_bytes, ..."""
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
