"""Build a model component on the meta device and materialise it on the target device and dtype.

Random weights by default (timing, FLOPs and memory do not depend on weight values); real weights
load from a local diffusers folder, safetensors only, never pickles.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from sdbench.errors import BadInput
from sdbench.models.registry import Component, ModelSpec

DTYPES = {
    "fp32": torch.float32,
    "tf32": torch.float32,
    "fp16": torch.float16,
    "bf16": torch.bfloat16,
    "fp8": torch.bfloat16,  # fp8 quantises linear layers on top of bf16 (see runner.precision)
}

WEIGHT_FILES = {
    "unet": "unet/diffusion_pytorch_model.safetensors",
    "transformer": "transformer/diffusion_pytorch_model.safetensors",
    "vae": "vae/diffusion_pytorch_model.safetensors",
    "text_encoder": "text_encoder/model.safetensors",
    "text_encoder_2": "text_encoder_2/model.safetensors",
}


def construct_on_meta(component: Component) -> nn.Module:
    """The component's module with every parameter and buffer on the meta device (no memory)."""
    with torch.device("meta"):
        if component.kind in ("CLIPTextModel", "CLIPTextModelWithProjection"):
            import transformers

            config = transformers.CLIPTextConfig(**component.config)
            config._attn_implementation = "sdpa"
            module = getattr(transformers, component.kind)(config)
        else:
            import diffusers

            module = getattr(diffusers, component.kind)(**component.config)
    return module.eval().requires_grad_(False)


def count_parameters(component: Component) -> int:
    return sum(p.numel() for p in construct_on_meta(component).parameters())


def _fill_random_(module: nn.Module, seed: int) -> None:
    """Deterministic weights that keep activations bounded: N(0, 1/fan_in) matrices, unit norms."""
    generator = torch.Generator(device=next(module.parameters()).device).manual_seed(seed)
    for name, parameter in module.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "bias":
            parameter.zero_()
        elif parameter.ndim == 1:  # norm scales
            parameter.fill_(1.0)
        else:
            fan_in = parameter[0].numel()
            parameter.normal_(0.0, 1.0 / math.sqrt(fan_in), generator=generator)


def _fill_buffers_(module: nn.Module) -> None:
    """Buffers are left uninitialised by to_empty; rebuild the ones these architectures have."""
    for name, buffer in module.named_buffers():
        if name.endswith("position_ids"):
            buffer.copy_(torch.arange(buffer.shape[-1], device=buffer.device).expand_as(buffer))
        else:
            raise RuntimeError(
                f"don't know how to initialise buffer {name} of {type(module).__name__}"
            )


def materialise(
    spec: ModelSpec,
    component_name: str,
    device: str,
    precision: str,
    weights: str = "random",
    seed: int = 0,
) -> nn.Module:
    """The component on `device` in the precision's dtype, random-initialised or loaded."""
    component = spec.components[component_name]
    dtype = DTYPES[precision]
    module = construct_on_meta(component).to(dtype)
    if device == "meta":  # shapes only: FLOP counting
        return module
    if weights == "random":
        module = module.to_empty(device=device)
        with torch.no_grad():
            _fill_random_(module, seed)
            _fill_buffers_(module)
        return module
    state = load_safetensors(weights, component_name, device)
    module.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=True, assign=True)
    with torch.no_grad():
        _fill_buffers_(module)
    return module.to(device)


def load_safetensors(folder: str, component_name: str, device: str) -> dict[str, torch.Tensor]:
    """A component's state dict from `folder`, refusing pickles and paths that leave the folder."""
    from safetensors.torch import load_file

    root = Path(folder).resolve()
    path = (root / WEIGHT_FILES[component_name]).resolve()
    if not path.is_relative_to(root):
        raise BadInput(f'"{path}" lies outside the weights folder "{root}"; refusing to load it.')
    if not path.is_file():
        raise BadInput(
            f'No {WEIGHT_FILES[component_name]} in weights folder "{root}". sdbench loads diffusers '
            "folders with .safetensors weights only (convert .bin/.ckpt files with diffusers first)."
        )
    return load_file(str(path), device=str(device) if device != "mps" else "cpu")
