"""Decide before running whether a device can run a cell at all; the answer becomes an `unsupported` row.

Suites are written once and run anywhere: a CUDA-only kernel on a CPU, bf16 on a pre-Ampere GPU or
fp8 without torchao are findings with a reason, never crashes or silent drops.
"""

from __future__ import annotations

import importlib.util

import torch

from sdbench.cell import Cell
from sdbench.models.registry import get_model


def _cuda_capability(device: str) -> tuple[int, int]:
    return torch.cuda.get_device_capability(device)


def unsupported_reason(cell: Cell) -> str | None:
    """Why `cell` cannot run on its device, or None when it can."""
    kind = cell.device.split(":")[0]
    return (
        _precision_reason(cell, kind)
        or _attention_reason(cell, kind)
        or _compile_reason(cell, kind)
        or _stage_reason(cell)
    )


def _is_rocm() -> bool:
    return bool(torch.version.hip)


def _precision_reason(cell: Cell, kind: str) -> str | None:
    p = cell.precision
    if kind == "cuda" and not _is_rocm():
        major, minor = _cuda_capability(cell.device)
        if p in ("tf32", "bf16") and major < 8:
            return f"{p} needs an Ampere or newer NVIDIA GPU (compute capability 8.0+); this one is {major}.{minor}"
        if p == "fp8" and (major, minor) < (8, 9):
            return f"fp8 needs an Ada or Hopper GPU (compute capability 8.9+); this one is {major}.{minor}"
    elif p == "tf32" and not (kind == "cuda" and _is_rocm()):
        return "tf32 is a tensor-core mode of NVIDIA Ampere+ (and ROCm MI300) GPUs; other devices compute fp32"
    elif p == "fp8":
        return f"fp8 cells need a CUDA GPU with fp8 tensor cores (Ada/Hopper/Blackwell), not {kind}"
    if p == "fp8" and importlib.util.find_spec("torchao") is None:
        return "fp8 needs the torchao package: pip install 'sdbench[fp8]'"
    if p == "fp16" and kind == "cpu":
        return None  # runs, slowly: that is worth measuring
    return None


def _attention_reason(cell: Cell, kind: str) -> str | None:
    a = cell.attention
    if a in ("sdpa", "math", "classic", "sliced"):
        return None
    if a == "xformers":
        if kind != "cuda":
            return "xformers kernels run on CUDA GPUs only"
        if importlib.util.find_spec("xformers") is None:
            return "xformers is not installed (pip install xformers matching your torch)"
        return None
    if kind == "cpu":
        if a == "flash":
            return (
                None
                if cell.precision in ("fp32", "bf16", "fp16")
                else f"the CPU flash kernel has no {cell.precision}"
            )
        return f"the {a} SDPA kernel exists only on CUDA GPUs; on the CPU use math or flash"
    if kind in ("mps", "xpu"):
        return f"the {a} SDPA kernel is CUDA-only; on {kind} use sdpa, math, classic or sliced"
    # CUDA / ROCm
    low_precision = cell.precision in ("fp16", "bf16", "fp8")
    if a == "flash":
        if not torch.backends.cuda.is_flash_attention_available():
            return "this torch build has no flash attention kernel"
        if not low_precision:
            return f"flash attention computes in fp16/bf16 only, not {cell.precision}"
        if not _is_rocm() and _cuda_capability(cell.device)[0] < 8:
            return "flash attention needs compute capability 8.0+ (Ampere or newer)"
    if a == "cudnn":
        if _is_rocm():
            return "the cuDNN attention kernel does not exist on ROCm"
        if not low_precision:
            return f"cuDNN attention computes in fp16/bf16 only, not {cell.precision}"
        if _cuda_capability(cell.device)[0] < 8:
            return "cuDNN attention needs compute capability 8.0+"
    return None


def _compile_reason(cell: Cell, kind: str) -> str | None:
    if cell.compile == "reduce-overhead" and kind != "cuda":
        return "reduce-overhead uses CUDA graphs, which exist only on CUDA/ROCm GPUs"
    if cell.compile != "none" and kind == "mps":
        return "torch.compile's inductor backend does not target MPS in this torch"
    return None


def _stage_reason(cell: Cell) -> str | None:
    spec = get_model(cell.model)
    if cell.stage in ("unet", "pipeline") and "unet" not in spec.components:
        return f"{cell.model} has no UNet"
    return None
