"""Cells for tests: a tiny model on the CPU at 64x64, fp32, SDPA, no compile, unless told otherwise."""

from __future__ import annotations

from sdbench.cell import Cell


def cpu_cell(
    model: str = "tiny",
    stage: str = "unet",
    *,
    height: int = 64,
    width: int = 64,
    batch_size: int = 1,
    precision: str = "fp32",
    **other,
) -> Cell:
    """A `Cell` on "cpu" (SDPA, no compile unless given); `other` sets any other field."""
    other = {"attention": "sdpa", "compile": "none", **other}
    return Cell(model, stage, "cpu", height, width, batch_size, precision, **other)
