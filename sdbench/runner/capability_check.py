"""Ask a subprocess which cells this machine cannot run, so the manager never imports torch.

`sdbench run --dry-run` plans a run without running it; the capability check (runner/capability,
torch's own `can_use_*` answers, the model registry) needs torch, so it runs here as
`python -m sdbench.runner.capability_check`, cells in on stdin, reasons out on stdout, the way
device detection does (sdbench.devices).

`sdbench run` asks the same subprocess before it starts workers (`unsupported_groups`): a group of
cells that is unsupported throughout gets its rows without a worker (torch and diffusers imported,
models built) for nothing. The subprocess reports the environment a worker would have for those
devices, so the rows are the ones a worker would write.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence

from sdbench.cell import Cell
from sdbench.errors import DeviceError


def unsupported_reasons(cells: Sequence[Cell]) -> dict[str, str]:
    """cell_id -> why that cell cannot run on its device, for the cells that cannot."""
    return _ask(cells)["reasons"]


def unsupported_groups(
    groups: Sequence[Sequence[Cell]], worker_env: Mapping[str, str] | None = None
) -> list[tuple[list[tuple[Cell, str]], dict]]:
    """The groups whose every cell is unsupported: each as (cell, reason) pairs and the
    environment a worker for its device would report (`worker_env` is what the executor gives a
    worker: the allocator setting). Pinned GPU workers are told the host's GPU count; so is this."""
    from sdbench.runner.executor import host_gpu_count, pinned_device

    environ = {**os.environ, **(worker_env or {})}
    answer = _ask([cell for group in groups for cell in group], environ, groups)
    reasons, environments = answer["reasons"], answer["environments"]
    settled = []
    for group in groups:
        if group and all(cell.cell_id in reasons for cell in group):
            environment = dict(environments[group[0].device])
            if pinned_device(group[0].device, environ)[1]:
                environment["gpu_count"] = host_gpu_count(environ)
            settled.append(([(cell, reasons[cell.cell_id]) for cell in group], environment))
    return settled


def _ask(
    cells: Sequence[Cell],
    environ: Mapping[str, str] | None = None,
    groups: Sequence[Sequence[Cell]] = (),
) -> dict:
    """The subprocess's answer; with `environ`, also the worker environment of each device
    that has one of `groups` unsupported throughout (finding it imports diffusers: seconds)."""
    request = {
        "cells": [cell.to_dict() for cell in cells],
        "environment": environ is not None,
        "groups": [[cell.cell_id for cell in group] for group in groups],
    }
    try:
        result = subprocess.run(
            [sys.executable, "-m", "sdbench.runner.capability_check"],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=600,
            env=dict(environ) if environ is not None else None,
        )
    except subprocess.TimeoutExpired:
        raise DeviceError("The capability check did not answer within 10 minutes.") from None
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise DeviceError(f"The capability check failed (is torch installed here?):\n{tail}")
    lines = result.stdout.strip().splitlines()  # libraries may print before the answer
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        raise DeviceError(
            "The capability check gave no answer it could read (its output ended with "
            f"{(lines or ['nothing'])[-1][:200]!r})."
        ) from None


def main() -> None:
    from sdbench.cell import as_pipeline  # not runner.serve, which imports diffusers (seconds)
    from sdbench.runner.capability import unsupported_reason

    request = json.load(sys.stdin)
    reasons, device_of = {}, {}
    for data in request["cells"]:
        cell = Cell.from_dict(data)
        device_of[cell.cell_id] = cell.device
        reason = unsupported_reason(as_pipeline(cell) if cell.stage == "serve" else cell)
        if reason:
            reasons[cell.cell_id] = reason
    devices = {
        device_of[group[0]]
        for group in request.get("groups", [])
        if group and all(cell_id in reasons for cell_id in group)
    }
    environments = {}
    if request["environment"] and devices:
        from sdbench.runner.worker import configure_torch, environment

        configure_torch()  # the threads and allocator a worker would run with
        environments = {device: environment(device) for device in sorted(devices)}
    print(json.dumps({"reasons": reasons, "environments": environments}, default=str))


if __name__ == "__main__":
    main()
