"""Numerical fidelity: compare a cell's output with an fp32, math-attention reference of the same weights.

The reference upcasts the cell's own (already rounded) weights, so the error measured is the
error of the arithmetic (precision, kernel, compiler), not of weight rounding. A configuration
whose error exceeds its precision's tolerance, or whose output has NaN/inf, fails fidelity and
can never "win" a comparison.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from sdbench.cell import Cell
from sdbench.levers import memory_modes, parse_cache
from sdbench.models import attention as attention_settings
from sdbench.models import step_cache
from sdbench.models.workload import Workload
from sdbench.runner.memory_modes import apply_attention_slicing, exact_vae
from sdbench.runner.quantise import unquantised

# Relative L2 error each precision may show against the fp32 math reference (random weights,
# one call). Measured on the CPU (sd15, 128x128, batch 1, torch 2.13): fp32 flash 1.4e-6;
# bf16 unet 1.4e-2 (flash, math and classic alike), vae_decode 9.4e-3, text_encoder 9.3e-3;
# fp16 unet 1.9e-3; a 20-step tiny pipeline does not compound (bf16 1.8e-2, fp16 2.4e-3).
# A broken kernel is far above: attention without its 1/sqrt(d) scale gives 0.50 in bf16.
# tf32 keeps fp16's 10-bit mantissa; fp8 (3-bit mantissa, per-row scales) is set loosely and
# has not been measured here (no fp8 hardware): check its rows' ref_rel_err on a GPU.
TOLERANCE_REL = {"fp32": 1e-3, "tf32": 1e-2, "fp16": 3e-2, "bf16": 8e-2, "fp8": 0.25}
# Quantised linear layers (the `quant` axis) against the unquantised fp32 model.
QUANT_TOLERANCE_REL = {"int8wo": 0.1, "int8dq": 0.15, "fp8dq": 0.25, "nf4": 0.35}
# VAE tiling decodes overlapping tiles and blends their seams: not bit-exact.
VAE_TILING_TOLERANCE_REL = 0.1


def tolerance_rel(cell: Cell) -> float:
    """The relative L2 error `cell` may show: the loosest of its precision's and its levers'."""
    tolerances = [TOLERANCE_REL[cell.precision]]
    if cell.quant != "none":
        tolerances.append(QUANT_TOLERANCE_REL[cell.quant])
    kind = parse_cache(cell.cache).kind
    if kind != "none" and step_cache.implementation(kind) is not None:
        tolerances.append(step_cache.implementation(kind).tolerance_rel)
    if "vae_tiling" in memory_modes(cell.memory):
        tolerances.append(VAE_TILING_TOLERANCE_REL)
    return max(tolerances)


class ReferenceCache:
    """fp32 copies of a worker's modules and the reference outputs already computed, per shape."""

    def __init__(self) -> None:
        self._outputs: dict[tuple, torch.Tensor] = {}

    def module(self, module: nn.Module) -> nn.Module:
        """The fp32 version of `module` (itself when already fp32 and not quantised).

        Copies are transient — made for one reference call and freed with it — so they never
        count in a later cell's peak memory. A quantised module is rebuilt unquantised from its
        seed (or weight files) rather than kept, so no second copy is resident while timing.
        """
        rebuilt = unquantised(module)
        if rebuilt is not None:
            return rebuilt.float()
        if next(module.parameters()).dtype == torch.float32:
            return module
        return copy.deepcopy(module).float()

    def output(self, workload: Workload) -> torch.Tensor:
        cell = workload.cell
        key = (
            cell.stage,
            cell.height,
            cell.width,
            cell.batch_size,
            cell.cfg,
            cell.steps,
            cell.channels_last,
        )
        if key not in self._outputs:
            self._outputs[key] = reference_output(workload, self)
        return self._outputs[key]


def reference_output(workload: Workload, cache: ReferenceCache) -> torch.Tensor:
    modules = {name: cache.module(m) for name, m in workload.modules.items()}
    attention_settings.install(modules, "sdpa")
    inputs = {k: v.float() if v.is_floating_point() else v for k, v in workload.inputs.items()}
    # force_eager: the reference never goes through the cell's torch.compile wrapper.
    with (
        torch.compiler.set_stance("force_eager"),
        attention_settings.kernel_context("math"),
        exact_vae(modules),
        torch.no_grad(),
    ):
        output = (workload.reference_run or workload.run)(modules, inputs)
    attention_settings.install(workload.modules, workload.cell.attention)  # shared when fp32
    apply_attention_slicing(workload)
    return output.float()


def fidelity(workload: Workload, output: torch.Tensor, cache: ReferenceCache) -> dict[str, object]:
    """ref_max_abs_err, ref_rel_err, nonfinite and fidelity_ok of `output` against the reference."""
    output = output.float()
    nonfinite = not bool(torch.isfinite(output).all())
    reference = cache.output(workload)
    difference = (output - reference).nan_to_num(nan=float("inf"))
    max_abs = float(difference.abs().max())
    rel = float(difference.norm() / reference.norm().clamp_min(1e-30))
    tolerance = tolerance_rel(workload.cell)
    return {
        "ref_max_abs_err": max_abs if max_abs != float("inf") else None,
        "ref_rel_err": rel if rel != float("inf") else None,
        "nonfinite": nonfinite,
        "fidelity_ok": (not nonfinite) and rel <= tolerance,
        "fidelity_tolerance": tolerance,
    }
