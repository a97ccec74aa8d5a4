"""What one timed call of a stage is (DESIGN.md): inputs, modules and the callable, per cell.

A Workload owns its inputs (seeded, so a reference run sees the very same ones) and a `call()`
that runs exactly one timed call under the cell's attention kernel and precision settings.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from sdbench.cell import Cell
from sdbench.models.build import DTYPES, materialise
from sdbench.models.registry import ModelSpec, get_model
from sdbench.runner import attention as attention_settings

STAGE_COMPONENTS = {
    "text_encoder": ("text_encoder", "text_encoder_2"),
    "unet": ("unet",),
    "vae_decode": ("vae",),
    "pipeline": ("text_encoder", "text_encoder_2", "unet", "vae"),
}


@dataclass
class Workload:
    """One stage of one model, ready to call."""

    cell: Cell
    spec: ModelSpec
    modules: dict[str, nn.Module]
    inputs: dict[str, torch.Tensor]
    run: Callable[[dict[str, nn.Module], dict[str, torch.Tensor]], torch.Tensor]
    images_per_call: int
    iterations_per_call: int
    extra_context: list[Callable[[], contextlib.AbstractContextManager]] = field(
        default_factory=list
    )

    def call(self) -> torch.Tensor:
        """Run one timed call: the stage under the cell's kernel and precision settings."""
        with self.context(), torch.no_grad():
            return self.run(self.modules, self.inputs)

    @contextlib.contextmanager
    def context(self) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            stack.enter_context(attention_settings.kernel_context(self.cell.attention))
            stack.enter_context(tf32_context(self.cell.precision == "tf32"))
            for make in self.extra_context:
                stack.enter_context(make())
            yield

    def synchronize(self) -> None:
        synchronize(self.cell.device)


def synchronize(device: str) -> None:
    kind = device.split(":")[0]
    if kind == "cuda":
        torch.cuda.synchronize(device)
    elif kind == "mps":
        torch.mps.synchronize()
    elif kind == "xpu":
        torch.xpu.synchronize(device)


@contextlib.contextmanager
def tf32_context(enabled: bool) -> Iterator[None]:
    """TF32 matmuls and convolutions only inside tf32 cells; fp32 cells stay true fp32."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


class ModelCache:
    """Components built once per worker, keyed by (model, component, device, precision, weights)."""

    def __init__(self) -> None:
        self._modules: dict[tuple, nn.Module] = {}

    def get(self, spec: ModelSpec, name: str, cell: Cell) -> nn.Module:
        key = (spec.name, name, cell.device, cell.precision, cell.weights)
        if key not in self._modules:
            self._modules[key] = materialise(spec, name, cell.device, cell.precision, cell.weights)
        return self._modules[key]

    def clear(self) -> None:
        self._modules.clear()


def _randn(shape: tuple[int, ...], seed: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator).to(device=device, dtype=dtype)


def _token_ids(spec: ModelSpec, batch: int, device: str) -> torch.Tensor:
    vocab = spec.components["text_encoder"].config["vocab_size"]
    generator = torch.Generator().manual_seed(1)
    return torch.randint(0, vocab, (batch, spec.text_length), generator=generator).to(device)


def build_workload(cell: Cell, cache: ModelCache | None = None) -> Workload:
    """Modules, seeded inputs and the callable for `cell`'s stage."""
    spec = get_model(cell.model)
    cache = cache or ModelCache()
    names = [n for n in STAGE_COMPONENTS[cell.stage] if n in spec.components]
    modules = {name: cache.get(spec, name, cell) for name in names}
    attention_settings.install(modules, cell.attention)
    if cell.channels_last:
        for name in ("unet", "vae"):
            if name in modules:
                modules[name].to(memory_format=torch.channels_last)
    builder = {
        "text_encoder": _text_encoder,
        "unet": _unet,
        "vae_decode": _vae_decode,
        "pipeline": _pipeline,
    }
    return builder[cell.stage](cell, spec, modules)


def guided_batch(cell: Cell) -> int:
    return cell.batch_size * (2 if cell.cfg else 1)


def _latents(cell: Cell, spec: ModelSpec, batch: int, seed: int = 2) -> torch.Tensor:
    shape = (
        batch,
        spec.latent_channels,
        cell.height // spec.vae_scale_factor,
        cell.width // spec.vae_scale_factor,
    )
    return _randn(shape, seed, cell.device, DTYPES[cell.precision])


def encode_text(
    spec: ModelSpec, modules: dict[str, nn.Module], ids: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Prompt embeddings as the pipelines build them (SDXL: both encoders' penultimate layers)."""
    if "text_encoder_2" not in modules:
        return modules["text_encoder"](ids)[0], None
    first = modules["text_encoder"](ids, output_hidden_states=True)
    second = modules["text_encoder_2"](ids, output_hidden_states=True)
    hidden = torch.cat([first.hidden_states[-2], second.hidden_states[-2]], dim=-1)
    return hidden, second.text_embeds


def _text_encoder(cell: Cell, spec: ModelSpec, modules: dict[str, nn.Module]) -> Workload:
    inputs = {"ids": _token_ids(spec, guided_batch(cell), cell.device)}

    def run(modules, inputs):
        return encode_text(spec, modules, inputs["ids"])[0]

    return Workload(cell, spec, modules, inputs, run, images_per_call=0, iterations_per_call=0)


def _unet_conditioning(cell: Cell, spec: ModelSpec, batch: int) -> dict[str, torch.Tensor]:
    dtype = DTYPES[cell.precision]
    unet_config = spec.components["unet"].config
    inputs = {
        "encoder_hidden_states": _randn(
            (batch, spec.text_length, unet_config["cross_attention_dim"]), 3, cell.device, dtype
        ),
    }
    if unet_config.get("addition_embed_type") == "text_time":
        pooled = (
            unet_config["projection_class_embeddings_input_dim"]
            - 6 * unet_config["addition_time_embed_dim"]
        )
        inputs["text_embeds"] = _randn((batch, pooled), 4, cell.device, dtype)
        size = torch.tensor([cell.height, cell.width, 0, 0, cell.height, cell.width], dtype=dtype)
        inputs["time_ids"] = size.repeat(batch, 1).to(cell.device)
    return inputs


def unet_step(
    unet: nn.Module, latents: torch.Tensor, timestep: torch.Tensor, inputs: dict
) -> torch.Tensor:
    added = None
    if "time_ids" in inputs:
        added = {"text_embeds": inputs["text_embeds"], "time_ids": inputs["time_ids"]}
    return unet(
        latents,
        timestep,
        encoder_hidden_states=inputs["encoder_hidden_states"],
        added_cond_kwargs=added,
    ).sample


def _unet(cell: Cell, spec: ModelSpec, modules: dict[str, nn.Module]) -> Workload:
    batch = guided_batch(cell)
    inputs = {
        "latents": _latents(cell, spec, batch),
        "timestep": torch.full((batch,), 500, device=cell.device, dtype=torch.long),
        **_unet_conditioning(cell, spec, batch),
    }

    def run(modules, inputs):
        return unet_step(modules["unet"], inputs["latents"], inputs["timestep"], inputs)

    return Workload(
        cell, spec, modules, inputs, run, images_per_call=cell.batch_size, iterations_per_call=1
    )


def _vae_decode(cell: Cell, spec: ModelSpec, modules: dict[str, nn.Module]) -> Workload:
    inputs = {"latents": _latents(cell, spec, cell.batch_size)}

    def run(modules, inputs):
        return modules["vae"].decode(inputs["latents"] / spec.scaling_factor).sample

    return Workload(
        cell, spec, modules, inputs, run, images_per_call=cell.batch_size, iterations_per_call=0
    )


def make_scheduler():
    """The Euler scheduler SD pipelines ship with, built from its published config (no download)."""
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        timestep_spacing="leading",
        steps_offset=1,
    )


def _pipeline(cell: Cell, spec: ModelSpec, modules: dict[str, nn.Module]) -> Workload:
    """A whole txt2img call: encode prompts, `steps` guided UNet steps with the scheduler, decode."""
    inputs = {
        "ids": _token_ids(spec, guided_batch(cell), cell.device),
        "noise": _latents(cell, spec, cell.batch_size, seed=5),
        **{
            k: v
            for k, v in _unet_conditioning(cell, spec, guided_batch(cell)).items()
            if k == "time_ids"
        },
    }
    scheduler = make_scheduler()
    guidance = 7.5

    def run(modules, inputs):
        hidden, pooled = encode_text(spec, modules, inputs["ids"])
        conditioning = {"encoder_hidden_states": hidden}
        if pooled is not None:
            conditioning.update(text_embeds=pooled, time_ids=inputs["time_ids"])
        scheduler.set_timesteps(cell.steps, device=cell.device)
        latents = inputs["noise"] * scheduler.init_noise_sigma
        for t in scheduler.timesteps:
            model_input = torch.cat([latents] * 2) if cell.cfg else latents
            model_input = scheduler.scale_model_input(model_input, t)
            noise = unet_step(modules["unet"], model_input, t, conditioning)
            if cell.cfg:
                uncond, text = noise.chunk(2)
                noise = uncond + guidance * (text - uncond)
            latents = scheduler.step(noise, t, latents).prev_sample.to(latents.dtype)
        return modules["vae"].decode(latents / spec.scaling_factor).sample

    return Workload(
        cell,
        spec,
        modules,
        inputs,
        run,
        images_per_call=cell.batch_size,
        iterations_per_call=cell.steps,
    )
