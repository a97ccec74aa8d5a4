"""DeepCache for UNet models: the whole UNet every N steps, only its shallow branch in between.

Ma, Fang and Wang, "DeepCache: Accelerating Diffusion Models for Free" (CVPR 2024): a UNet's deep
features change slowly across denoising steps, so every N-th step (index 0, N, 2N, ...) runs the
whole UNet and keeps the feature map entering its last up-block; the steps between run only the
shallow branch — conv_in, the first down-block without its downsampler, the last up-block fed
with the kept deep feature (and fresh skip connections), the output convolutions. This is the
paper's uniform 1:N schedule with the skip branch at the first block. On SD1.5 at 512 px a
shallow step is 38% of a full step's FLOPs (tests/test_step_cache.py), so N = 3 does ~59%.

The step patches `unet.forward` for the one call it makes, so the sampling loop's argument
mapping (`workload.unet_step`) is reused and the module is untouched between calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from sdbench.levers import CacheSetting
from sdbench.models.registry import ModelSpec
from sdbench.models.step_cache import patched_forward


@dataclass
class DeepCacheStep:
    """The per-step function of one sampling call (its state lasts that call)."""

    unet: nn.Module
    interval: int
    calls: int = 0
    full_calls: int = 0
    kept: dict[str, torch.Tensor] = field(default_factory=dict)

    def __call__(self, latents, timestep, conditioning: dict, index: int) -> torch.Tensor:
        from sdbench.models.workload import unet_step

        self.calls += 1
        if index % self.interval == 0 or "deep_feature" not in self.kept:
            self.full_calls += 1
            handle = self.unet.up_blocks[-1].register_forward_pre_hook(
                self._keep_deep_feature, with_kwargs=True
            )
            try:
                return unet_step(self.unet, latents, timestep, conditioning)
            finally:
                handle.remove()

        def shallow(*args, **kwargs):
            return shallow_forward(self.unet, self.kept["deep_feature"], *args, **kwargs)

        with patched_forward(self.unet, shallow):
            return unet_step(self.unet, latents, timestep, conditioning)

    def _keep_deep_feature(self, _module, _args, kwargs) -> None:
        self.kept["deep_feature"] = kwargs["hidden_states"]


def make(setting: CacheSetting, spec: ModelSpec, denoiser: nn.Module) -> DeepCacheStep:
    return DeepCacheStep(denoiser, setting.interval or 1)


def shallow_forward(
    unet: nn.Module,
    deep_feature: torch.Tensor,
    sample: torch.Tensor,
    timestep: torch.Tensor,
    encoder_hidden_states: torch.Tensor,
    added_cond_kwargs: dict | None = None,
    cross_attention_kwargs: dict | None = None,
    return_dict: bool = True,
    **refused,
):
    """UNet2DConditionModel.forward with everything below the first block taken from `deep_feature`.

    Mirrors diffusers' forward for the conditioning SD pipelines use (time, text, SDXL's added
    embeddings); ControlNet/adapter residuals, class labels and masks are refused, not ignored.
    """
    given = sorted(name for name, value in refused.items() if value is not None)
    if given:
        raise TypeError(f"DeepCache's shallow UNet step does not take {given}")
    emb = unet.time_embedding(unet.get_time_embed(sample=sample, timestep=timestep), None)
    augmented = unet.get_aug_embed(
        emb=emb, encoder_hidden_states=encoder_hidden_states, added_cond_kwargs=added_cond_kwargs
    )
    if augmented is not None:
        emb = emb + augmented
    if unet.time_embed_act is not None:
        emb = unet.time_embed_act(emb)
    encoder_hidden_states = unet.process_encoder_hidden_states(
        encoder_hidden_states=encoder_hidden_states, added_cond_kwargs=added_cond_kwargs
    )
    sample = unet.conv_in(sample)
    text = {
        "encoder_hidden_states": encoder_hidden_states,
        "cross_attention_kwargs": cross_attention_kwargs,
    }
    skips = (sample,) + _first_block_skips(unet.down_blocks[0], sample, emb, text)
    last = unet.up_blocks[-1]
    inputs = {"hidden_states": deep_feature, "temb": emb, "res_hidden_states_tuple": skips}
    sample = last(**inputs, **(text if getattr(last, "has_cross_attention", False) else {}))
    if unet.conv_norm_out:
        sample = unet.conv_act(unet.conv_norm_out(sample))
    sample = unet.conv_out(sample)
    if not return_dict:
        return (sample,)
    from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

    return UNet2DConditionOutput(sample=sample)


def _first_block_skips(
    block: nn.Module, sample: torch.Tensor, emb: torch.Tensor, text: dict
) -> tuple:
    """The first down-block's layer outputs, the skips the last up-block reads; its downsampler
    feeds only the deep levels, so it is switched off for the call."""
    downsamplers, block.downsamplers = block.downsamplers, None
    try:
        if getattr(block, "has_cross_attention", False):
            _, skips = block(hidden_states=sample, temb=emb, **text)
        else:
            _, skips = block(hidden_states=sample, temb=emb)
    finally:
        block.downsamplers = downsamplers
    return tuple(skips)
