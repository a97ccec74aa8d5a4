"""FLOPs and bytes moved by each stage of a workload: from the shipped table, a fit, or a live count.

`sdbench/data/flops.csv` (made by scripts/make_flops_table.py) holds counts per model, stage,
square resolution, batch 1 and 2 and attention kind. Everything here grows linearly in batch,
so batch 1 and 2 give any batch. A resolution that is not in the table is fitted as
a + b*pixels + c*pixels^2 over the model's tabled resolutions (convolutions and projections
grow with pixels, attention with pixels squared); a model that is not in the table at all is
counted live on the meta device when torch is importable.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sdbench.analysis.workload import ImageWorkload
from sdbench.datafiles import read_data_csv
from sdbench.errors import BadInput

COUNTS = ("flops", "matmul_elements", "other_elements")
DTYPE_BYTES = {"fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2, "fp8": 2}


@dataclass(frozen=True)
class StageCost:
    """One timed call of one stage: arithmetic and the traffic of its operators."""

    flops: float
    matmul_bytes: float  # read + written by matmuls and convolutions (compute-bound operators)
    other_bytes: float  # read + written by everything else (memory-bound operators)


def attention_kind(attention: str) -> str:
    """Which counted traffic an attention setting has: the attention matrix materialised or not."""
    return "classic" if attention in ("classic", "sliced") else "sdpa"


@functools.lru_cache(maxsize=1)
def cost_table() -> pd.DataFrame:
    return read_data_csv("flops.csv")


@functools.lru_cache(maxsize=1)
def _cost_rows() -> dict[tuple[str, str, str], pd.DataFrame]:
    """The table's rows per (model, stage, attention kind), split once: filtering the whole table
    per workload cost a report ~10 ms a call."""
    table = cost_table()
    return {
        (str(model), str(stage), str(kind)): rows
        for (model, stage, kind), rows in table.groupby(["model", "stage", "attention"], sort=False)
    }


def stage_cost(workload: ImageWorkload, stage: str) -> StageCost:
    """FLOPs and bytes of one call of `stage` of `workload`.

    The counts are made with cfg on (the UNet and text encoders see 2 x batch); without cfg those
    two stages do the work of half the batch, which the linear growth in batch gives directly.
    """
    kind = attention_kind(workload.attention)
    one, two = _counts(workload.registered_model, stage, workload.height, workload.width, kind)
    batch_size = workload.batch_size
    guided_batch = batch_size if workload.cfg or stage == "vae_decode" else batch_size / 2
    counts = {k: one[k] + (guided_batch - 1) * (two[k] - one[k]) for k in COUNTS}
    dtype_bytes = DTYPE_BYTES.get(workload.precision, 2)
    return StageCost(
        flops=counts["flops"],
        matmul_bytes=counts["matmul_elements"] * dtype_bytes,
        other_bytes=counts["other_elements"] * dtype_bytes,
    )


@functools.lru_cache(maxsize=512)
def _counts(model: str, stage: str, height: int, width: int, kind: str) -> tuple[dict, dict]:
    from sdbench.models.registry import MODELS, same_architecture

    if model in MODELS:
        model = same_architecture(model)  # lcm-sd15 is counted as sd15, sdxl-turbo as sdxl
    rows = _cost_rows().get((model, stage, kind))
    if rows is None:
        return _live(model, stage, height, width, kind)
    if stage == "text_encoder":  # prompts do not depend on the image size
        rows = rows[rows["height"] == rows["height"].min()]
        height = width = int(rows["height"].iloc[0])
    exact = rows[(rows["height"] == height) & (rows["width"] == width)]
    if len(exact) == 2:
        return tuple(exact.sort_values("batch_size")[list(COUNTS)].to_dict("records"))  # type: ignore[return-value]
    return tuple(_fit_pixels(rows[rows["batch_size"] == b], height * width) for b in (1, 2))  # type: ignore[return-value]


def _fit_pixels(rows: pd.DataFrame, pixels: int) -> dict:
    x = (rows["height"] * rows["width"]).to_numpy(dtype=float)
    design = np.stack([np.ones_like(x), x, x**2], axis=1)[:, : min(3, len(x))]
    point = np.array([1.0, pixels, float(pixels) ** 2])[: design.shape[1]]
    out = {}
    for key in COUNTS:
        coefficients, *_ = np.linalg.lstsq(design, rows[key].to_numpy(dtype=float), rcond=None)
        out[key] = float(max(point @ coefficients, 0.0))
    return out


def _live(model: str, stage: str, height: int, width: int, kind: str) -> tuple[dict, dict]:
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise BadInput(
            f'Model "{model}" is not in the shipped FLOPs table and torch is not installed to count it. '
            "Install torch, or regenerate the table with scripts/make_flops_table.py."
        )
    from sdbench.models.cost_count import count_cost

    return tuple(count_cost(model, stage, height, width, b, kind) for b in (1, 2))  # type: ignore[return-value]
