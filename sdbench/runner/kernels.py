"""Which attention kernels a workload really runs, read from the PyTorch profiler.

A forced setting that silently falls back to another kernel would make a row lie, so tests (CPU)
and `scripts/gpu-check` (GPU) profile one call and compare the kernels seen with the setting.
"""

from __future__ import annotations

from torch.profiler import ProfilerActivity, profile

from sdbench.devices.device import device_kind
from sdbench.models.workload import Workload

# Profiler op name -> the attention backend it belongs to.
SDPA_OPS = {
    "aten::_scaled_dot_product_attention_math": "math",
    "aten::_scaled_dot_product_attention_math_for_mps": "math",
    "aten::_scaled_dot_product_flash_attention": "flash",
    "aten::_scaled_dot_product_flash_attention_for_cpu": "flash",
    "aten::_scaled_dot_product_efficient_attention": "efficient",
    "aten::_scaled_dot_product_cudnn_attention": "cudnn",
    "aten::_scaled_dot_product_fused_attention_overrideable": "fused",  # XPU
}
# diffusers' AttnProcessor and SlicedAttnProcessor compute scores with baddbmm, never SDPA.
CLASSIC_OPS = {"aten::baddbmm": "classic"}
ATTENTION_MARKERS = ("scaled_dot_product", "flash", "efficient_attention", "fmha", "xformers")

# The backend each forced setting must show; sdpa lets PyTorch choose, so anything goes.
EXPECTED_BACKEND = {
    "math": "math",
    "flash": "flash",
    "efficient": "efficient",
    "cudnn": "cudnn",
    "classic": "classic",
    "sliced": "classic",
    "xformers": "xformers",
}


def attention_kernels_used(workload: Workload) -> set[str]:
    """Profiler names of the attention ops (and, on CUDA, kernels) one call of `workload` runs."""
    activities = [ProfilerActivity.CPU]
    if device_kind(workload.cell.device) == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as profiler:
        workload.call()
        workload.synchronize()
    names = {event.name for event in profiler.events()}
    return {
        name
        for name in names
        if name in SDPA_OPS
        or name in CLASSIC_OPS
        or any(marker in name.lower() for marker in ATTENTION_MARKERS)
    }


def backends_of(kernels: set[str]) -> set[str]:
    """The attention backends (math, flash, efficient, cudnn, classic, xformers) behind `kernels`."""
    backends = {SDPA_OPS.get(name) or CLASSIC_OPS.get(name) for name in kernels}
    backends.discard(None)
    # xformers names its own ops, or calls aten's fused kernels without going through SDPA.
    raw_fused = {"aten::_efficient_attention_forward", "aten::_flash_attention_forward"} & kernels
    sdpa_fused = {"flash", "efficient"} & backends
    if any("xformers" in name.lower() for name in kernels) or (raw_fused and not sdpa_fused):
        backends.add("xformers")
    return backends


def kernel_mismatch(workload: Workload, kernels: set[str] | None = None) -> str | None:
    """Why the kernels seen do not match the cell's attention setting, or None when they do.

    A forced SDPA kernel and classic attention must be the only backend seen. Sliced and
    xformers attention reach the UNet only (text encoders, and the VAE for sliced, keep SDPA as
    in diffusers pipelines), so for those the expected backend must merely be present.
    """
    attention = workload.cell.attention
    expected = EXPECTED_BACKEND.get(attention)
    if expected is None:
        return None
    seen = backends_of(attention_kernels_used(workload) if kernels is None else kernels)
    if expected not in seen:
        return f"{attention} attention ran {sorted(seen) or 'no attention kernel'}, not {expected}"
    if attention not in ("sliced", "xformers") and seen != {expected}:
        return f"{attention} attention also ran {sorted(seen - {expected})}"
    return None
