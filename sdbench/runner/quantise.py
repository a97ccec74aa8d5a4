"""The `quant` axis: quantise a built workload's linear layers, once per module.

The denoiser's and text encoders' linear layers are swapped for quantised ones (torchao's
int8 weight-only, int8 dynamic, float8 dynamic per-row; bitsandbytes' NF4 on CUDA);
convolutions, norms and the VAE keep the model's dtype, as in diffusers' torchao and
bitsandbytes recipes. Precision "fp8" from older suites is fp8dq on a bf16 model.

A quantised module remembers how to rebuild its unquantised self (`unquantised`), so the
fidelity reference is computed from the same weights before quantisation without holding a
second copy in memory while the cell is timed.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import nn

from sdbench.models.build import materialise
from sdbench.models.workload import QUANTISED_COMPONENTS, Workload

_QUANTISED_FLAG = "_sdbench_quant"
_UNQUANTISED = "_sdbench_unquantised"
# torch._scaled_mm needs both matrix dimensions divisible by 16; int8 kernels want 8.
_ALIGNMENT = {"fp8dq": 16, "int8wo": 8, "int8dq": 8, "nf4": 1}


def scheme_of(cell) -> str:
    """The cell's quant scheme; the old "fp8" precision means fp8dq."""
    return "fp8dq" if cell.precision == "fp8" else cell.quant


def eligible(scheme: str) -> Callable[[nn.Module, str], bool]:
    """A filter for linear layers whose shape the scheme's kernels accept."""
    alignment = _ALIGNMENT[scheme]

    def accept(module: nn.Module, name: str = "") -> bool:
        return (
            isinstance(module, nn.Linear)
            and module.in_features % alignment == 0
            and module.out_features % alignment == 0
        )

    return accept


def apply_quant(workload: Workload) -> int:
    """Quantise the workload's denoiser and text encoders; returns how many layers changed.

    Modules are shared between a worker's cells (ModelCache keys them by scheme), so a module
    already quantised is left as it is.
    """
    cell = workload.cell
    scheme = scheme_of(cell)
    if scheme == "none":
        return 0
    quantised = 0
    for name, module in workload.modules.items():
        if name not in QUANTISED_COMPONENTS or getattr(module, _QUANTISED_FLAG, False):
            continue
        setattr(
            module,
            _UNQUANTISED,
            partial(materialise, workload.spec, name, cell.device, cell.precision, cell.weights),
        )
        quantised += quantise(module, scheme, cell.device)
        setattr(module, _QUANTISED_FLAG, True)
    return quantised


def unquantised(module: nn.Module) -> nn.Module | None:
    """A fresh, unquantised build of a quantised module (same seed or files), else None."""
    rebuild = getattr(module, _UNQUANTISED, None)
    return None if rebuild is None else rebuild()


def quantise(module: nn.Module, scheme: str, device: str) -> int:
    """Quantise `module`'s eligible linear layers in place with `scheme`; returns their count."""
    accept = eligible(scheme)
    count = sum(1 for name, m in module.named_modules() if accept(m, name))
    if scheme == "nf4":
        _quantise_nf4(module, accept, device)
    else:
        from torchao.quantization import quantize_

        quantize_(module, torchao_config(scheme), filter_fn=accept)
    return count


def torchao_config(scheme: str):
    """torchao's config object for `scheme` (torchao >= 0.10; capability.py checks for it)."""
    from torchao import quantization

    if scheme == "int8wo":
        return quantization.Int8WeightOnlyConfig()
    if scheme == "int8dq":
        return quantization.Int8DynamicActivationInt8WeightConfig()
    return quantization.Float8DynamicActivationFloat8WeightConfig(granularity=quantization.PerRow())


def _quantise_nf4(module: nn.Module, accept, device: str) -> None:
    """bitsandbytes' Linear4bit (NF4 weights, compute in the model's dtype) for each layer."""
    import bitsandbytes as bnb

    for parent in list(module.modules()):
        for child_name, child in list(parent.named_children()):
            if not accept(child, child_name):
                continue
            layer = bnb.nn.Linear4bit(
                child.in_features,
                child.out_features,
                bias=child.bias is not None,
                compute_dtype=child.weight.dtype,
                quant_type="nf4",
                device="meta",
            )
            layer.weight = bnb.nn.Params4bit(
                child.weight.data.to("cpu"), requires_grad=False, quant_type="nf4"
            ).to(device)  # moving Params4bit to a CUDA device quantises it
            if child.bias is not None:
                layer.bias = nn.Parameter(child.bias.data, requires_grad=False)
            setattr(parent, child_name, layer)
    if str(device).startswith("cuda"):
        torch.cuda.empty_cache()
