"""The fp8 precision: quantise a built workload's linear layers with torchao, once per module.

Models are materialised in bf16 for fp8 cells (models/build.py); this module then swaps the
UNet's and text encoders' linear weights for float8 (e4m3, per-row scales) and quantises their
activations dynamically at each call, so matmuls run on fp8 tensor cores. Convolutions, norms
and the VAE stay bf16, as in diffusers' torchao recipes. Other precisions need nothing here:
dtypes are set at build and TF32 is a context (workload.py).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from sdbench.models.workload import Workload

FP8_COMPONENTS = ("unet", "text_encoder", "text_encoder_2")
_QUANTISED_FLAG = "_sdbench_fp8"
# torch._scaled_mm needs both matrix dimensions divisible by 16.
_FP8_ALIGNMENT = 16


def fp8_eligible(module: nn.Module, name: str = "") -> bool:
    """A linear layer whose shape the fp8 matmul kernel accepts."""
    return (
        isinstance(module, nn.Linear)
        and module.in_features % _FP8_ALIGNMENT == 0
        and module.out_features % _FP8_ALIGNMENT == 0
    )


def apply_precision(
    workload: Workload, before_quantise: Callable[[nn.Module], object] | None = None
) -> int:
    """Quantise the workload's modules for fp8 cells; returns how many layers were quantised.

    `before_quantise(module)` runs once per module before its weights change, so the fidelity
    reference can keep an unquantised copy (fidelity.ReferenceCache.module).
    """
    if workload.cell.precision != "fp8":
        return 0
    quantised = 0
    for name, module in workload.modules.items():
        if name not in FP8_COMPONENTS or getattr(module, _QUANTISED_FLAG, False):
            continue
        if before_quantise is not None:
            before_quantise(module)
        quantised += quantise_fp8(module)
        setattr(module, _QUANTISED_FLAG, True)
    return quantised


def quantise_fp8(module: nn.Module) -> int:
    """torchao float8 dynamic-activation, float8-weight quantisation of eligible linear layers."""
    from torchao.quantization import quantize_

    count = sum(1 for name, m in module.named_modules() if fp8_eligible(m, name))
    quantize_(module, _fp8_config(), filter_fn=fp8_eligible)
    return count


def _fp8_config():
    """torchao's config API (torchao >= 0.10; capability.py checks for it before a cell runs)."""
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow

    return Float8DynamicActivationFloat8WeightConfig(granularity=PerRow())
