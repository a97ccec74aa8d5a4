"""SD3.5 Medium at full size: its denoiser step runs on the CPU, and its FLOPs count at 1024 px."""

from __future__ import annotations

import pytest

from sdbench.cell import Cell


@pytest.mark.slow
def test_sd35_medium_denoiser_step_runs_on_cpu_at_256_px():
    import torch

    from sdbench.models.workload import build_workload

    cell = Cell(model="sd35-medium", stage="unet", device="cpu", height=256, width=256,
                batch_size=1, precision="bf16", attention="sdpa", compile="none", cfg=True)  # fmt: skip
    output = build_workload(cell).call()
    assert tuple(output.shape) == (2, 16, 32, 32)
    assert torch.isfinite(output.float()).all()


@pytest.mark.slow
def test_sd35_medium_denoiser_flops_at_1024_px_on_meta():
    from sdbench.models.flops import count_flops

    flops = count_flops("sd35-medium", "unet", 1024, 1024, 1, True, 28)
    # 2 x 4096 image + 333 text tokens through 24 MMDiT-X blocks: ~22.5 TFLOP with cfg
    assert flops == pytest.approx(2.2499e13, rel=1e-3)
    assert count_flops("sd35-medium", "unet", 1024, 1024, 1, False, 28) * 2 == flops
