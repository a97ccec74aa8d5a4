"""The memory model: peak accelerator memory of a txt2img workload, and what would make it fit.

peak = weights + the largest stage activation peak + a fixed framework/context overhead, where

- weights = published parameters x dtype bytes, per component (all resident unless offloaded);
- activations = dtype/4 x (a * images * pixels + c * images * pixels^2 [materialised attention only])
  x allocator slack, per stage, with a and c fitted to peaks measured on CPU (fp32, SDXL UNet bf16)
  (sdbench/data/activation_memory.csv, made by scripts/measure_activation_memory.py);
- overhead = CUDA context, cuBLAS/cuDNN workspaces and caching-allocator slack.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sdbench.analysis.costs import DTYPE_BYTES, attention_kind
from sdbench.analysis.workload import ImageWorkload
from sdbench.datafiles import read_data_csv
from sdbench.levers import QUANT_WEIGHT_BYTES
from sdbench.models.registry import MODELS, get_model, same_architecture

GIB = 1024**3
# CUDA context plus library workspaces: PyTorch's own docs put the context at a few hundred MiB;
# we take 0.75 GiB, and scale activations by 1.15 for the caching allocator's reserved slack.
CONTEXT_OVERHEAD_BYTES = int(0.75 * GIB)
ALLOCATOR_SLACK = 1.15
# macOS lets the GPU wire about three quarters of unified memory by default.
UNIFIED_MEMORY_USABLE = 0.75
MEMORY_LEVERS = (
    "offload",
    "vae_slicing",
    "quant",
)  # estimate_memory's settings beyond the workload
STAGES = ("text_encoder", "unet", "vae_decode")
STAGE_WEIGHTS = {  # the components each stage needs on the accelerator (what offloading keeps)
    "text_encoder": ("text_encoder", "text_encoder_2", "text_encoder_3"),
    "unet": ("unet", "transformer"),
    "vae_decode": ("vae",),
}
# SDXL's VAE overflows in fp16: its config sets force_upcast, so diffusers decodes in fp32
# (stabilityai/stable-diffusion-xl-base-1.0 vae/config.json).
VAE_UPCAST_MODELS = {"sdxl"}


@dataclass(frozen=True)
class MemoryEstimate:
    """Where the peak goes, in bytes."""

    weights_bytes: int
    activation_bytes: int
    overhead_bytes: int
    peak_stage: str

    @property
    def peak_bytes(self) -> int:
        return self.weights_bytes + self.activation_bytes + self.overhead_bytes


def _same_vae_as(model: str, models: set[str]) -> bool:
    """Whether `model` decodes with the very autoencoder of one of `models` (SSD-1B, Turbo: SDXL's)."""
    if model not in MODELS:
        return model in models
    vae = MODELS[model].components["vae"]
    return any(MODELS[other].components["vae"] == vae for other in models)


def component_weight_bytes(model: str, precision: str, quant: str = "none") -> dict[str, int]:
    """Parameters x bytes per parameter for each component of `model`.

    With a quant scheme the denoiser's and text encoders' linear weights take the scheme's bytes
    (levers.QUANT_WEIGHT_BYTES) and their other parameters keep the precision's dtype; the
    linear share of each component comes from data/linear_params.csv.
    """
    spec = get_model(model)
    dtype_bytes = DTYPE_BYTES.get(precision, 2)
    if precision == "fp8":  # the old spelling of bf16 + fp8dq
        quant = "fp8dq"
    weights = {}
    for name, component in spec.components.items():
        params = component.published_params or 0
        share = linear_share(spec.name, name) if quant != "none" else 0.0
        quantised = params * share * QUANT_WEIGHT_BYTES.get(quant, dtype_bytes)
        weights[name] = int(params * (1 - share) * dtype_bytes + quantised)
    return weights


@functools.lru_cache(maxsize=4)
def data_table(name: str) -> pd.DataFrame:
    """A CSV shipped in sdbench/data, read once."""
    return read_data_csv(name)


def linear_share(model: str, component: str) -> float:
    """The share of a component's parameters in linear layers (what the quant axis quantises);
    0 for components the quant axis leaves alone (the VAE) or that were not counted."""
    twin = same_architecture(model) if model in MODELS else model
    return _linear_shares().get((twin, component), 0.0)


@functools.lru_cache(maxsize=1)
def _linear_shares() -> dict[tuple[str, str], float]:
    """(model, component) -> linear share, from the first row of each in linear_params.csv."""
    data = data_table("linear_params.csv").drop_duplicates(["model", "component"])
    shares = data["linear_params"] / data["params"]
    return {
        (str(model), str(component)): float(share)
        for model, component, share in zip(data["model"], data["component"], shares, strict=True)
    }


def measured_activations() -> pd.DataFrame:
    return data_table("activation_memory.csv")


@functools.lru_cache(maxsize=32)
def activation_coefficients(model: str, stage: str) -> tuple[float, float]:
    """(a, c): fp32 bytes per image-pixel, and per image-pixel^2 when attention is materialised.

    Fitted with an intercept that absorbs CPU-side first-call allocations (oneDNN primitives,
    thread pools); on a GPU that constant is replaced by CONTEXT_OVERHEAD_BYTES. Fused attention
    (flash / memory-efficient) needs memory linear in pixels, so it gets no pixel^2 term.
    """
    data = measured_activations()

    def measured(name: str) -> bool:
        return bool(((data["model"] == name) & (data["stage"] == stage)).any())

    fit_model = next((m for m in _relatives(model) if measured(m)), "sd15")
    rows = data[(data["model"] == fit_model) & (data["stage"] == stage)]
    images = (rows["batch_size"] * (1 if stage == "vae_decode" else 2)).to_numpy(float)
    # Activations scale with the element size: bring bf16/fp16 measurements to fp32 bytes.
    measured = (rows["activation_bytes"] * 4 / rows["precision"].map(DTYPE_BYTES)).to_numpy(float)
    if stage == "text_encoder":
        return float(measured.max() / images.max()), 0.0
    pixels = (rows["height"] * rows["width"]).to_numpy(float)
    classic = (rows["attention"] == "classic").to_numpy(float)
    columns = [images * pixels, np.ones_like(pixels)] + (
        [classic * images * pixels**2] if classic.any() else []
    )
    coefficients, *_ = np.linalg.lstsq(np.stack(columns, axis=1), measured, rcond=None)
    a = float(max(coefficients[0], 0.0))
    if classic.any():
        return a, float(max(coefficients[2], 0.0))
    if stage != "unet" or fit_model == "sd15":
        return a, 0.0
    return a, activation_coefficients("sd15", "unet")[1] * attention_matrix_ratio(model, "sd15")


def _relatives(model: str) -> list[str]:
    """Whose measured activations may answer for `model`, nearest first: its own, its
    architecture twin's (sdxl-turbo: sdxl's), its registry family's (ssd-1b, vega: sdxl's).

    Beyond them activation_coefficients falls back to sd15, the UNet measured at most sizes:
    the registry names no nearer measured relative of sd21 (family sd21), the SD3 and FLUX
    transformers or the tiny test configs.
    """
    if model not in MODELS:
        return [model]
    family = MODELS[model].family
    same_family = [name for name, spec in MODELS.items() if spec.family == family]
    return [model, same_architecture(model), *same_family]


def _first_attention(model: str) -> tuple[int, int]:
    """(level, heads) of a UNet's highest-resolution attention (diffusers reads attention_head_dim as heads)."""
    config = get_model(model).components["unet"].config
    level = next(
        i for i, kind in enumerate(config["down_block_types"]) if kind.startswith("CrossAttn")
    )
    heads = config["attention_head_dim"]
    return level, heads[level] if isinstance(heads, list) else heads


def attention_matrix_ratio(model: str, reference: str) -> float:
    """How much larger `model`'s biggest attention matrix is than `reference`'s at the same pixels.

    Elements per image = heads x tokens^2, tokens = pixels / (8 * 2^level)^2.
    """
    (level, heads), (ref_level, ref_heads) = _first_attention(model), _first_attention(reference)
    return (heads / ref_heads) * 16.0 ** (ref_level - level)


def activation_bytes(
    model: str,
    stage: str,
    height: int,
    width: int,
    images: int,
    attention: str,
    precision: str,
    vae_tile: bool = False,
) -> int:
    """Activation peak of one call of `stage` on `images` (already doubled for cfg where it applies)."""
    a, c_classic = activation_coefficients(model, stage)
    pixels = float(
        min(height * width, 512 * 512) if vae_tile and stage == "vae_decode" else height * width
    )
    if stage == "text_encoder":
        fp32_bytes = a * images
    else:
        c = c_classic if attention_kind(attention) == "classic" else 0.0
        fp32_bytes = images * (a * pixels + c * pixels**2)
    if stage == "vae_decode" and _same_vae_as(model, VAE_UPCAST_MODELS):
        precision = "fp32"  # the pipeline decodes in fp32 whatever the workload's precision
    return int(fp32_bytes * DTYPE_BYTES.get(precision, 2) / 4 * ALLOCATOR_SLACK)


@functools.lru_cache(maxsize=1024)  # recommend asks it of one workload once per catalogue GPU
def estimate_memory(
    workload: ImageWorkload, offload: str = "none", vae_slicing: bool = False, quant: str = "none"
) -> MemoryEstimate:
    """Peak memory of a whole txt2img call. offload: none | model | sequential.

    With cfg the text encoders and the denoiser see 2 x batch_size (few-step models run without).
    """
    model = workload.registered_model
    weights = component_weight_bytes(model, workload.precision, quant)
    images = {
        "text_encoder": workload.guided_batch,
        "unet": workload.guided_batch,
        "vae_decode": 1 if vae_slicing else workload.batch_size,
    }
    peaks = {}
    for stage in STAGES:
        activations = activation_bytes(
            model, stage, workload.height, workload.width, images[stage], workload.attention,
            workload.precision,
        )  # fmt: skip
        resident = sum(weights.get(n, 0) for n in STAGE_WEIGHTS[stage])
        if offload == "none":
            resident = sum(weights.values())
        elif offload == "sequential":  # one submodule at a time: a small fraction of the component
            resident = resident // 20
        peaks[stage] = (resident, activations)
    stage = max(peaks, key=lambda s: sum(peaks[s]))
    resident, activations = peaks[stage]
    return MemoryEstimate(resident, activations, CONTEXT_OVERHEAD_BYTES, stage)


def usable_memory_bytes(vram_bytes: int, unified_memory: bool) -> int:
    return int(vram_bytes * UNIFIED_MEMORY_USABLE) if unified_memory else vram_bytes


def _remedies(batch_size: int, precision: str, attention: str) -> list[tuple[str, dict, str]]:
    """Memory remedies, cheapest in speed first: (label, change, the lever setting it is)."""
    options: list[tuple[str, dict, str]] = []
    if precision in ("fp32", "tf32"):
        options.append(("fp16", {"precision": "fp16"}, ""))
    if attention_kind(attention) == "classic":
        options.append(("SDPA or attention slicing", {"attention": "sdpa"}, ""))
    if batch_size > 1:
        options.append(("VAE slicing", {"vae_slicing": True}, "vae_slicing"))
        options.append(("batch size 1", {"batch_size": 1}, ""))
    options.append(("int8 weights (quant int8wo)", {"quant": "int8wo"}, "int8wo"))
    options.append(("model CPU offload (~10-30% slower)", {"offload": "model"}, "model_offload"))
    options.append(("4-bit weights (quant nf4, CUDA)", {"quant": "nf4"}, "nf4"))
    options.append(
        (
            "sequential CPU offload (several times slower)",
            {"offload": "sequential"},
            "sequential_offload",
        )
    )
    return options


def ways_to_fit(
    workload: ImageWorkload,
    usable_bytes: int,
    measured: dict[str, tuple[float, str]] | None = None,
) -> list[str]:
    """Changes that bring the peak under `usable_bytes`, each with its peak: single remedies when
    any suffices, else the shortest cumulative combination (in the order of `_remedies`).

    `measured` maps a lever setting to the peak-memory ratio an accelerator measured against the
    plain cell, and where (analysis.levers.measured_memory_ratios); such a remedy's peak is that
    ratio times the modelled plain peak, and its label says it was measured.
    """
    options = _remedies(workload.batch_size, workload.precision, workload.attention)
    measured = measured or {}
    plain_peak = estimate_memory(workload).peak_bytes
    found = []
    for label, change, setting in options:
        peak = _peak_with(workload, change)
        how = ""
        if setting in measured:
            ratio, where = measured[setting]
            peak, how = (
                int(plain_peak * ratio),
                f" (measured: {ratio:.2f}x the plain peak on {where})",
            )
        if peak <= usable_bytes:
            found.append(f"{label}, peak ~{peak / GIB:.1f} GiB{how}")
    if found:
        return found
    combined: dict = {}
    labels: dict[str, str] = {}
    for label, change, _ in options:
        combined.update(change)
        labels[next(iter(change))] = label.split(" (")[0]  # 4-bit weights replace int8 ones
        peak = _peak_with(workload, combined)
        if peak <= usable_bytes:
            return [f"{' + '.join(labels.values())}, peak ~{peak / GIB:.1f} GiB"]
    return []


def _peak_with(workload: ImageWorkload, change: dict) -> int:
    """The modelled peak with a remedy's change: workload fields, or memory levers
    (offload, vae_slicing, quant) that are not part of the workload."""
    levers = {k: v for k, v in change.items() if k in MEMORY_LEVERS}
    changed = workload.but(**{k: v for k, v in change.items() if k not in MEMORY_LEVERS})
    return estimate_memory(changed, **levers).peak_bytes
