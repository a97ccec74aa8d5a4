"""Build a model component on the meta device and materialise it on the target device and dtype.

Random weights by default (timing, FLOPs and memory do not depend on weight values); real weights
load from a local diffusers folder, safetensors only, never pickles.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from sdbench.errors import BadInput
from sdbench.models.registry import Component, ModelSpec, vae_component

DTYPES = {
    "fp32": torch.float32,
    "tf32": torch.float32,
    "fp16": torch.float16,
    "bf16": torch.bfloat16,
    "fp8": torch.bfloat16,  # fp8 quantises linear layers on top of bf16 (see runner.quantise)
}

WEIGHT_FILES = {
    "unet": "unet/diffusion_pytorch_model.safetensors",
    "transformer": "transformer/diffusion_pytorch_model.safetensors",
    "vae": "vae/diffusion_pytorch_model.safetensors",
    "text_encoder": "text_encoder/model.safetensors",
    "text_encoder_2": "text_encoder_2/model.safetensors",
    "text_encoder_3": "text_encoder_3/model.safetensors",
}
TRANSFORMERS_CONFIGS = {
    "CLIPTextModel": "CLIPTextConfig",
    "CLIPTextModelWithProjection": "CLIPTextConfig",
    "T5EncoderModel": "T5Config",
}


def construct_on_meta(component: Component) -> nn.Module:
    """The component's module with every parameter and buffer on the meta device (no memory)."""
    with torch.device("meta"):
        if component.kind in TRANSFORMERS_CONFIGS:
            import transformers

            config = getattr(transformers, TRANSFORMERS_CONFIGS[component.kind])(**component.config)
            config._attn_implementation = "sdpa"
            module = getattr(transformers, component.kind)(config)
        else:
            import diffusers

            module = getattr(diffusers, component.kind)(**component.config)
    return module.eval().requires_grad_(False)


# Parameter counts by (class, config): the registry's 80 components are 32 distinct networks
# (a family shares its VAE and text encoders), and building one on meta takes up to a second.
_PARAMETER_COUNTS: dict[tuple[str, str], int] = {}


def count_parameters(component: Component) -> int:
    """Elements a checkpoint of the component stores: parameters and persistent buffers.

    Tied tensors (T5's shared token embedding) count once.
    """
    key = (component.kind, json.dumps(component.config, sort_keys=True, default=repr))
    if key not in _PARAMETER_COUNTS:
        state = construct_on_meta(component).state_dict(keep_vars=True)
        unique = {id(tensor): tensor for tensor in state.values()}
        _PARAMETER_COUNTS[key] = sum(tensor.numel() for tensor in unique.values())
    return _PARAMETER_COUNTS[key]


_POOL_SIZE = (1 << 22) + 15  # odd length so consecutive tensors start at unrelated offsets
_POOL_STRIDE = 7919  # extra step between tensors, so equal-sized neighbours differ


def _fill_random_(module: nn.Module, seed: int) -> None:
    """Deterministic weights that keep activations bounded: N(0, 1/fan_in) matrices, unit norms.

    Drawing ~10^9 normals costs more than diffusers' own init, so each matrix is written from one
    seeded pool of N(0, 1) values (a window at a moving offset) already scaled, in one pass per
    window of at most _POOL_SIZE values: `torch.mul(..., out=)` touches each weight once, and
    the first touch (the page fault) is most of the time on a CPU. Timing, FLOPs and memory do
    not depend on the values; fidelity needs only that they are fixed.
    """
    first = next(module.parameters())
    generator = torch.Generator().manual_seed(seed)
    pool = torch.randn(_POOL_SIZE, generator=generator).to(device=first.device, dtype=first.dtype)
    # Doubled, so every window of up to _POOL_SIZE values from the first half is contiguous.
    pool = torch.cat([pool, pool])
    offset = 0
    for name, parameter in module.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "bias":
            parameter.zero_()
        elif parameter.ndim == 1:  # norm scales
            parameter.fill_(1.0)
        else:
            scale = 1.0 / math.sqrt(parameter[0].numel())
            flat = parameter.view(-1)
            for begin in range(0, flat.numel(), _POOL_SIZE):
                window = flat[begin : begin + _POOL_SIZE]
                torch.mul(pool[offset : offset + window.numel()], scale, out=window)
                offset = (offset + window.numel() + _POOL_STRIDE) % _POOL_SIZE


@contextlib.contextmanager
def _one_cpu_thread(device: str) -> Iterator[None]:
    """Writing fresh memory is page-fault bound: extra intra-op threads only add barriers.

    On a loaded 2-core host, two OpenMP threads per write made SD1.5's fill 2-3x slower than one
    (benchmarks/materialise.py); GPU fills are kernels and ignore this.
    """
    if not str(device).startswith("cpu"):
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _fill_buffers_(module: nn.Module) -> None:
    """Buffers are left uninitialised by to_empty; rebuild the ones these architectures have.

    CLIP's position ids and SD3's sin-cos patch position table; T5 (relative attention bias is a
    parameter), the UNets and the autoencoders have none.
    """
    for owner_name, owner in module.named_modules():
        for name, buffer in owner.named_buffers(recurse=False):
            if name == "position_ids":
                ids = torch.arange(buffer.shape[-1], device=buffer.device)
                buffer.copy_(ids.expand_as(buffer))
            elif name == "pos_embed" and type(owner).__name__ == "PatchEmbed":
                buffer.copy_(_patch_position_table(owner, buffer))
            else:
                raise RuntimeError(
                    f"don't know how to initialise buffer {owner_name}.{name} of "
                    f"{type(module).__name__}"
                )


def _patch_position_table(patch_embed: nn.Module, buffer: torch.Tensor) -> torch.Tensor:
    """The 2-D sin-cos table diffusers' PatchEmbed computes in its constructor."""
    from diffusers.models.embeddings import get_2d_sincos_pos_embed

    grid_size = patch_embed.pos_embed_max_size or patch_embed.height
    table = get_2d_sincos_pos_embed(
        buffer.shape[-1],
        grid_size,
        base_size=patch_embed.base_size,
        interpolation_scale=patch_embed.interpolation_scale,
        output_type="pt",
    )
    return table.reshape(buffer.shape).to(device=buffer.device, dtype=buffer.dtype)


@contextlib.contextmanager
def _diffusers_errors_only() -> Iterator[None]:
    """diffusers warns on every dtype cast that "modules ... should be kept in float32: []",
    even when the list is empty; FLOP counting in `sdbench report` printed it per model."""
    from diffusers.utils import logging as diffusers_logging

    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    try:
        yield
    finally:
        diffusers_logging.set_verbosity(verbosity)


def materialise(
    spec: ModelSpec,
    component_name: str,
    device: str,
    precision: str,
    weights: str = "random",
    seed: int = 0,
    vae: str = "default",
) -> nn.Module:
    """The component on `device` in the precision's dtype, random-initialised or loaded.

    `vae` picks the autoencoder when component_name is "vae" ("taesd": the family's tiny one).
    """
    if component_name == "vae":
        component = vae_component(spec, vae)
        if vae != "default" and weights != "random":
            raise BadInput(
                f'vae = "{vae}" runs with random weights only; the weights folder "{weights}" '
                'holds the model\'s own VAE. Use weights = "random" or vae = "default".'
            )
    else:
        component = spec.components[component_name]
    dtype = DTYPES[precision]
    with _diffusers_errors_only():
        module = construct_on_meta(component).to(dtype)
    if device == "meta":  # shapes only: FLOP counting
        return module
    if weights == "random":
        module = module.to_empty(device=device)
        with torch.no_grad(), _one_cpu_thread(device):
            _fill_random_(module, seed)
            _fill_buffers_(module)
        return module
    state = load_safetensors(weights, component_name, device)
    module.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=True, assign=True)
    # Non-persistent buffers (CLIP's position_ids) are not in checkpoints: still on meta here.
    for owner in module.modules():
        for name, buffer in list(owner._buffers.items()):
            if buffer is not None and buffer.is_meta:
                owner._buffers[name] = torch.empty_like(buffer, device=device)
    with torch.no_grad():
        _fill_buffers_(module)
    return module.to(device)


def load_safetensors(folder: str, component_name: str, device: str) -> dict[str, torch.Tensor]:
    """A component's state dict from `folder`, refusing pickles and paths that leave the folder.

    The component's file may be one `.safetensors` file or shards listed by a
    `.safetensors.index.json` (SD3.5's T5 and Large transformer), and may exist only as the fp16
    variant (`*.fp16.safetensors`). A Hugging Face cache snapshot (`.../snapshots/<revision>`)
    may link into its own `../../blobs` folder, and nowhere else.
    """
    from safetensors.torch import load_file

    root = Path(folder).resolve()
    allowed = [root]
    if root.parent.name == "snapshots":
        allowed.append(root.parent.parent / "blobs")
    state: dict[str, torch.Tensor] = {}
    for path in _weight_files(root, component_name):
        real = path.resolve()
        if not any(real.is_relative_to(base) for base in allowed):
            raise BadInput(
                f'"{path}" leads to "{real}", outside the weights folder "{root}"; refusing to load it.'
            )
        if not real.is_file():
            raise BadInput(f'"{path}" is listed for {component_name} but missing from "{root}".')
        state.update(load_file(str(real), device=str(device) if device != "mps" else "cpu"))
    return state


def _weight_files(root: Path, component_name: str) -> list[Path]:
    """The component's .safetensors files: single or sharded, plain or the fp16 variant."""
    expected = root / WEIGHT_FILES[component_name]
    stem = expected.name.removesuffix(".safetensors")
    for variant in ("", ".fp16"):
        single = expected.parent / f"{stem}{variant}.safetensors"
        if single.is_file():
            return [single]
        index = expected.parent / f"{stem}{variant}.safetensors.index.json"
        if index.is_file():
            return [expected.parent / name for name in _shard_names(index)]
    raise BadInput(
        f"No {WEIGHT_FILES[component_name]} (or its shards' .index.json, or the .fp16 variant) in "
        f'weights folder "{root}". sdbench loads diffusers folders with .safetensors weights only '
        "(convert .bin/.ckpt files with diffusers first)."
    )


def _shard_names(index: Path) -> list[str]:
    import json

    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        names = list(dict.fromkeys(weight_map.values()))
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise BadInput(
            f'"{index}" is not a safetensors shard index ({type(error).__name__}: {error}): it '
            'needs a "weight_map" from tensor names to shard files. Re-download it.'
        ) from None
    if not names or not all(isinstance(n, str) and n.endswith(".safetensors") for n in names):
        raise BadInput(f'"{index}" lists no .safetensors shards; sdbench loads safetensors only.')
    return names
