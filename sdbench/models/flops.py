"""Count the FLOPs of one timed call of a stage, on the meta device (shapes only, no memory).

Attention is counted through its math decomposition whatever kernel a cell times, so the count
is the same for every attention setting and precision. Counted under `no_grad`, not
`inference_mode` (FlopCounterMode reports 0 under inference_mode).
"""

from __future__ import annotations

import functools

from torch.utils.flop_counter import FlopCounterMode

from sdbench.cell import Cell


@functools.lru_cache(maxsize=256)
def count_flops(
    model: str,
    stage: str,
    height: int,
    width: int,
    batch_size: int,
    cfg: bool = True,
    steps: int = 20,
    vae: str = "default",
) -> int:
    """FLOPs of one timed call (see DESIGN.md's table of what a call is).

    Stage `unet` is one denoiser step (the MMDiT transformer for SD3 models); `vae` = "taesd"
    counts the family's tiny autoencoder for vae_decode and pipeline.
    """
    from sdbench.models.workload import build_workload

    if stage == "pipeline":  # the scheduler's elementwise arithmetic is negligible (< 1e-6)
        per_stage = {
            s: count_flops(model, s, height, width, batch_size, cfg, steps, vae)
            for s in ("text_encoder", "unet", "vae_decode")
        }
        return per_stage["text_encoder"] + steps * per_stage["unet"] + per_stage["vae_decode"]

    cell = meta_cell(model, stage, height, width, batch_size, cfg=cfg, steps=steps, vae=vae)
    workload = build_workload(cell)
    with FlopCounterMode(display=False) as counter:
        workload.call()
    return int(counter.get_total_flops())


def meta_cell(
    model: str,
    stage: str,
    height: int,
    width: int,
    batch_size: int,
    attention: str = "math",
    **options,
) -> Cell:
    """A cell on the meta device in fp32: shapes only, for counting FLOPs and bytes."""
    return Cell(
        model=model,
        stage=stage,
        device="meta",
        height=height,
        width=width,
        batch_size=batch_size,
        precision="fp32",
        attention=attention,
        compile="none",
        **options,
    )


def cell_flops(cell: Cell) -> int:
    return count_flops(
        cell.model,
        cell.stage,
        cell.height,
        cell.width,
        cell.batch_size,
        cell.cfg,
        cell.steps,
        cell.vae,
    )
