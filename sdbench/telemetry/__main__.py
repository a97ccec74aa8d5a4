"""Smoke check of a device's telemetry: `python -m sdbench.telemetry [DEVICE] [--seconds S]`.

Keeps the device busy with matmuls for a few seconds inside one telemetry window and prints the
row columns it produced plus the warnings they raise, as JSON. Exits 1 when the device's own
sensors could not be read (telemetry_error), so `scripts/gpu-check` can fail on it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from sdbench.devices.device import device_kind


def busy_loop(device: str, seconds: float) -> int:
    """Matmuls on `device` for about `seconds`; the number of calls made."""
    import torch

    size = 4096 if device_kind(device) == "cuda" else 512
    a = torch.randn(size, size, device=device)
    calls, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        a = torch.tanh(a @ a)
        calls += 1
        if device_kind(device) == "cuda" and calls % 10 == 0:
            torch.cuda.synchronize(device)
    if device_kind(device) == "cuda":
        torch.cuda.synchronize(device)
    return calls


def main(argv: list[str] | None = None) -> int:
    from sdbench.quality import telemetry_warnings
    from sdbench.telemetry import open_telemetry

    parser = argparse.ArgumentParser(prog="python -m sdbench.telemetry")
    parser.add_argument("device", nargs="?", default="cpu")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    import torch  # imported before the window opens so the window times only the work

    if device_kind(args.device) == "cuda" and not torch.cuda.is_available():
        print(f"{args.device}: torch sees no CUDA/ROCm GPU here", file=sys.stderr)
        return 2
    backend = open_telemetry(args.device)
    backend.start()
    calls = busy_loop(args.device, args.seconds)
    columns = backend.stop()
    backend.close()
    report = {"device": args.device, "calls": calls, **columns}
    report["warnings"] = telemetry_warnings(columns)
    print(json.dumps(report, indent=2))
    return 1 if columns.get("telemetry_error") else 0


if __name__ == "__main__":
    sys.exit(main())
