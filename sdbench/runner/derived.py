"""Figures derived from a cell's median time: it/s, images/s, TFLOP/s (and MFU where a peak is known)."""

from __future__ import annotations

from sdbench.cell import Cell


def derived_figures(
    cell: Cell, images_per_call: int, median_ms: float, flops: int, state: object = None
) -> dict:
    seconds = median_ms / 1000.0
    derived: dict = {
        "flops": float(flops),
        "tflops_per_s": flops / seconds / 1e12 if seconds > 0 else None,
    }
    if cell.stage == "unet":
        derived["it_per_s"] = 1.0 / seconds
        # Images per second of the denoising loop alone, at the suite's step count.
        derived["images_per_s"] = cell.batch_size / (seconds * cell.steps)
    elif images_per_call:
        derived["images_per_s"] = images_per_call / seconds
    if cell.stage == "pipeline":
        derived["it_per_s"] = cell.steps / seconds
    return derived
