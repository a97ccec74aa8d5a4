"""The compile axis: wrap a workload's call in torch.compile with the cell's mode."""

from __future__ import annotations

import torch

from sdbench.runner.workload import Workload


def compile_workload(workload: Workload) -> None:
    """Compile the stage's whole call; graph breaks (the scheduler loop) are fine."""
    mode = None if workload.cell.compile == "default" else workload.cell.compile
    workload.run = torch.compile(workload.run, mode=mode, dynamic=False)
