"""The `memory` axis: diffusers' own memory levers applied to a built workload.

Offload and attention slicing go through a DiffusionPipeline that holds the workload's modules
(`LeverPipeline`), so they are exactly diffusers' `enable_model_cpu_offload`,
`enable_sequential_cpu_offload` and `enable_attention_slicing`; the VAE modes are the
autoencoder's `enable_tiling` / `enable_slicing`, which the pipelines' (deprecated)
`enable_vae_tiling` / `enable_vae_slicing` call. Modules are shared between a worker's cells,
so every VAE flag is set on or off for each cell; offloaded modules are built per offload mode
(ModelCache keys them by it) and never shared with cells that keep weights on the device.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from diffusers import DiffusionPipeline
from torch import nn

from sdbench.levers import OFFLOAD_MODES, memory_modes
from sdbench.models.workload import Workload

_OFFLOADED_BY = "_sdbench_offload_pipeline"


class LeverPipeline(DiffusionPipeline):
    """A pipeline object over the workload's modules, for diffusers' pipeline-level levers.

    sdbench runs its own sampling loop (workload.py), so this pipeline is never called; its
    methods install hooks on the modules, which fire when the loop calls them.
    """

    model_cpu_offload_seq = "text_encoder->text_encoder_2->text_encoder_3->unet->transformer->vae"
    _optional_components = [
        "vae",
        "text_encoder",
        "text_encoder_2",
        "text_encoder_3",
        "unet",
        "transformer",
    ]

    def __init__(
        self,
        vae=None,
        text_encoder=None,
        text_encoder_2=None,
        text_encoder_3=None,
        unet=None,
        transformer=None,
    ):
        super().__init__()
        self.register_modules(
            vae=vae,
            text_encoder=text_encoder,
            text_encoder_2=text_encoder_2,
            text_encoder_3=text_encoder_3,
            unet=unet,
            transformer=transformer,
        )


def offload_mode(memory: str) -> str:
    """The offload mode of a memory setting, or "none"."""
    return next((m for m in memory_modes(memory) if m in OFFLOAD_MODES), "none")


def apply_memory(workload: Workload) -> None:
    """Set the cell's memory modes on its modules (and turn the others off)."""
    modes = memory_modes(workload.cell.memory)
    set_vae_modes(workload.modules, modes)
    apply_attention_slicing(workload)
    offload = offload_mode(workload.cell.memory)
    if offload != "none":
        _offload(workload, offload)


def apply_attention_slicing(workload: Workload) -> None:
    """diffusers' enable_attention_slicing on the denoiser, when the cell asks for it."""
    if "attention_slicing" in memory_modes(workload.cell.memory):
        LeverPipeline(**_denoisers(workload.modules)).enable_attention_slicing()


def memory_warnings(workload: Workload) -> list[str]:
    """Memory modes that the cell asked for but that changed nothing at its size."""
    vae = workload.modules.get("vae")
    tile = getattr(vae, "tile_sample_min_size", None)
    cell = workload.cell
    if not getattr(vae, "use_tiling", False) or type(vae).__name__ != "AutoencoderKL":
        return []
    if max(cell.height, cell.width) > tile:
        return []
    return [
        f"vae_tiling did not tile: a {cell.width}x{cell.height} image fits in the VAE's {tile} px "
        "tile, so diffusers decodes it in one piece (tiling starts above that size)"
    ]


def set_vae_modes(modules: dict[str, nn.Module], modes: tuple[str, ...]) -> None:
    vae = modules.get("vae")
    if vae is None:
        return
    vae.enable_tiling() if "vae_tiling" in modes else vae.disable_tiling()
    vae.enable_slicing() if "vae_slicing" in modes else vae.disable_slicing()


@contextlib.contextmanager
def exact_vae(modules: dict[str, nn.Module]) -> Iterator[None]:
    """The VAE decoding in one piece (for the fidelity reference), its modes restored after."""
    vae = modules.get("vae")
    saved = (getattr(vae, "use_tiling", False), getattr(vae, "use_slicing", False))
    set_vae_modes(modules, ())
    try:
        yield
    finally:
        set_vae_modes(
            modules,
            tuple(m for m, on in zip(("vae_tiling", "vae_slicing"), saved, strict=True) if on),
        )


def _denoisers(modules: dict[str, nn.Module]) -> dict[str, nn.Module]:
    return {n: m for n, m in modules.items() if n in ("unet", "transformer")}


def _offload(workload: Workload, mode: str) -> None:
    modules = workload.modules
    first = next(iter(modules.values()))
    pipeline = getattr(first, _OFFLOADED_BY, None)  # the modules were offloaded for a prior cell
    if pipeline is None:
        pipeline = LeverPipeline(**modules)
        if mode == "model_offload":
            pipeline.enable_model_cpu_offload(device=workload.cell.device)
        else:
            pipeline.enable_sequential_cpu_offload(device=workload.cell.device)
        for module in modules.values():
            setattr(module, _OFFLOADED_BY, pipeline)
    if mode == "model_offload":
        # As a pipeline's __call__ ends: every model back to the host, so each call loads them.
        workload.extra_context.append(lambda: _free_after(pipeline))


@contextlib.contextmanager
def _free_after(pipeline: LeverPipeline) -> Iterator[None]:
    try:
        yield
    finally:
        pipeline.maybe_free_model_hooks()
