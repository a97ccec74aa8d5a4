"""What one timed call of a stage is (DESIGN.md): inputs, modules and the callable, per cell.

A Workload owns its inputs (seeded, so a reference run sees the very same ones) and a `call()`
that runs exactly one timed call under the cell's attention kernel and precision settings.
Stage `unet` is one denoiser step: the UNet's, or the transformer's for SD3 and FLUX.1 models
(FLUX works on latents packed 2x2 into 64-channel tokens, as diffusers' FluxPipeline does).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from sdbench.cell import Cell
from sdbench.devices.backend import backend_for
from sdbench.levers import OFFLOAD_MODES, memory_modes, parse_cache
from sdbench.models import attention as attention_settings
from sdbench.models import step_cache
from sdbench.models.build import DTYPES, materialise
from sdbench.models.registry import ModelSpec, get_model
from sdbench.models.step_cache import DenoiserStep

TEXT_ENCODERS = ("text_encoder", "text_encoder_2", "text_encoder_3")
STAGE_COMPONENTS = {
    "text_encoder": TEXT_ENCODERS,
    "unet": ("unet", "transformer"),
    "vae_decode": ("vae",),
    "pipeline": (*TEXT_ENCODERS, "unet", "transformer", "vae"),
}
QUANTISED_COMPONENTS = ("unet", "transformer", *TEXT_ENCODERS)  # what the quant axis changes
GUIDANCE_SCALE = 7.5  # the value only weights a sum; it does not change the work


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
    # What the fidelity reference runs instead of `run` when the two differ (pipeline cells
    # with a step cache: the reference samples every step in full).
    reference_run: (
        Callable[[dict[str, nn.Module], dict[str, torch.Tensor]], torch.Tensor] | None
    ) = None

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
        backend_for(self.cell.device).synchronize()


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

    @staticmethod
    def key(spec: ModelSpec, name: str, cell: Cell) -> tuple:
        """Modules that a cell changes in place (quantised, offloaded) are keyed by that change."""
        vae = cell.vae if name == "vae" else "default"
        quant = cell.quant if name in QUANTISED_COMPONENTS else "none"
        offload = [m for m in memory_modes(cell.memory) if m in OFFLOAD_MODES]
        return (spec.name, name, cell.device, cell.precision, cell.weights, vae, quant, *offload)

    def retain_only(self, keys: set[tuple]) -> None:
        """Free every component but `keys`, so a cell's peak memory is its own stage's.

        Suites order a group's cells stage by stage, so this costs one rebuild per stage.
        """
        stale = [k for k in self._modules if k not in keys]
        for key in stale:
            del self._modules[key]
        if stale:
            gc.collect()

    def get(self, spec: ModelSpec, name: str, cell: Cell) -> nn.Module:
        key = self.key(spec, name, cell)
        vae = key[5]
        if key not in self._modules:
            self._modules[key] = materialise(
                spec, name, cell.device, cell.precision, cell.weights, vae=vae
            )
        return self._modules[key]

    def clear(self) -> None:
        self._modules.clear()


def _randn(shape: tuple[int, ...], seed: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    if device == "meta":  # counting FLOPs: shapes only, never memory (a 137 GB batch is fine)
        return torch.empty(shape, device="meta", dtype=dtype)
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator).to(device=device, dtype=dtype)


def _token_ids(
    spec: ModelSpec, batch: int, device: str, encoder: str = "text_encoder"
) -> torch.Tensor:
    vocab = spec.components[encoder].config["vocab_size"]
    length = spec.t5_length if encoder == spec.t5_encoder else spec.text_length
    generator = torch.Generator().manual_seed(1)
    return torch.randint(0, vocab, (batch, length), generator=generator).to(device)


def _prompt_inputs(spec: ModelSpec, batch: int, device: str) -> dict[str, torch.Tensor]:
    inputs = {"ids": _token_ids(spec, batch, device)}
    if spec.t5_encoder is not None:
        inputs["t5_ids"] = _token_ids(spec, batch, device, spec.t5_encoder)
    return inputs


def build_workload(cell: Cell, cache: ModelCache | None = None) -> Workload:
    """Modules, seeded inputs and the callable for `cell`'s stage."""
    spec = get_model(cell.model)
    cache = cache or ModelCache()
    names = [n for n in STAGE_COMPONENTS[cell.stage] if n in spec.components]
    cache.retain_only({cache.key(spec, name, cell) for name in names})
    modules = {name: cache.get(spec, name, cell) for name in names}
    # The SD3 transformer's joint-attention processor must stay: its SDPA kernel is still chosen
    # by the cell's kernel context; classic/sliced/xformers processors do not apply to it.
    attention_settings.install(
        {n: m for n, m in modules.items() if n != "transformer"}, cell.attention
    )
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
    spec: ModelSpec,
    modules: dict[str, nn.Module],
    ids: torch.Tensor,
    t5_ids: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Prompt embeddings and pooled embeddings as the pipelines build them.

    SD1/2: the last layer. SDXL: both encoders' penultimate layers side by side. SD3: that CLIP
    pair padded to T5's width, then T5's tokens appended along the sequence (zeros when the
    model runs without T5); pooled = both CLIP projections. FLUX: T5's last layer; pooled =
    CLIP's pooled output.
    """
    if spec.is_flux:
        return modules["text_encoder_2"](t5_ids)[0], modules["text_encoder"](ids).pooler_output
    if "text_encoder_2" not in modules:
        return modules["text_encoder"](ids)[0], None
    first = modules["text_encoder"](ids, output_hidden_states=True)
    second = modules["text_encoder_2"](ids, output_hidden_states=True)
    hidden = torch.cat([first.hidden_states[-2], second.hidden_states[-2]], dim=-1)
    if not spec.is_transformer:
        return hidden, second.text_embeds
    pooled = torch.cat([first.text_embeds, second.text_embeds], dim=-1)
    return torch.cat(
        [_pad_width(hidden, spec), _t5_embeddings(spec, modules, t5_ids, hidden)], 1
    ), pooled


def _pad_width(hidden: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    width = spec.components["transformer"].config["joint_attention_dim"]
    return torch.nn.functional.pad(hidden, (0, width - hidden.shape[-1]))


def _t5_embeddings(
    spec: ModelSpec, modules: dict[str, nn.Module], t5_ids: torch.Tensor | None, like: torch.Tensor
) -> torch.Tensor:
    if "text_encoder_3" in modules and t5_ids is not None:
        return modules["text_encoder_3"](t5_ids)[0]
    width = spec.components["transformer"].config["joint_attention_dim"]
    return like.new_zeros((like.shape[0], spec.t5_length, width))


def _text_encoder(cell: Cell, spec: ModelSpec, modules: dict[str, nn.Module]) -> Workload:
    inputs = _prompt_inputs(spec, guided_batch(cell), cell.device)

    def run(modules, inputs):
        return encode_text(spec, modules, inputs["ids"], inputs.get("t5_ids"))[0]

    return Workload(cell, spec, modules, inputs, run, images_per_call=0, iterations_per_call=0)


def _unet_conditioning(cell: Cell, spec: ModelSpec, batch: int) -> dict[str, torch.Tensor]:
    dtype = DTYPES[cell.precision]
    if spec.is_flux:
        config = spec.components["transformer"].config
        return {
            "encoder_hidden_states": _randn(
                (batch, spec.t5_length, config["joint_attention_dim"]), 3, cell.device, dtype
            ),
            "pooled_projections": _randn(
                (batch, config["pooled_projection_dim"]), 4, cell.device, dtype
            ),
            **flux_positions(cell, spec),
        }
    if spec.is_transformer:
        config = spec.components["transformer"].config
        tokens = spec.text_length + spec.t5_length
        return {
            "encoder_hidden_states": _randn(
                (batch, tokens, config["joint_attention_dim"]), 3, cell.device, dtype
            ),
            "pooled_projections": _randn(
                (batch, config["pooled_projection_dim"]), 4, cell.device, dtype
            ),
        }
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


def flux_positions(cell: Cell, spec: ModelSpec) -> dict[str, torch.Tensor]:
    """FLUX's rotary position ids (text: zeros; image: [0, row, column] per packed token) and,
    for guidance-distilled models, the embedded guidance scale (FluxPipeline's inputs)."""
    rows, columns = (
        cell.height // (spec.vae_scale_factor * 2),
        cell.width // (spec.vae_scale_factor * 2),
    )
    image_ids = torch.zeros(rows, columns, 3)
    image_ids[..., 1] += torch.arange(rows)[:, None]
    image_ids[..., 2] += torch.arange(columns)[None, :]
    dtype = DTYPES[cell.precision]
    positions = {
        "txt_ids": torch.zeros(spec.t5_length, 3).to(device=cell.device, dtype=dtype),
        "img_ids": image_ids.reshape(rows * columns, 3).to(device=cell.device, dtype=dtype),
    }
    if spec.guidance_embedded:
        positions["guidance"] = torch.full((1,), spec.guidance_scale, device=cell.device)
    return positions


def pack_latents(latents: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) latents to FLUX's (B, H/2 * W/2, 4C) tokens of 2x2 patches."""
    batch, channels, height, width = latents.shape
    patches = latents.view(batch, channels, height // 2, 2, width // 2, 2).permute(0, 2, 4, 1, 3, 5)
    return patches.reshape(batch, (height // 2) * (width // 2), channels * 4)


def unpack_latents(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """FLUX's packed tokens back to (B, C, height, width) latents (height, width in latent pixels)."""
    batch, _, features = tokens.shape
    patches = tokens.view(batch, height // 2, width // 2, features // 4, 2, 2)
    return patches.permute(0, 3, 1, 4, 2, 5).reshape(batch, features // 4, height, width)


def _flux_step(
    transformer: nn.Module, latents: torch.Tensor, timestep: torch.Tensor, inputs: dict
) -> torch.Tensor:
    batch = latents.shape[0]
    guidance = inputs.get("guidance")
    return transformer(
        hidden_states=latents,
        timestep=timestep.expand(batch).to(latents.dtype) / 1000,
        guidance=None if guidance is None else guidance.expand(batch),
        pooled_projections=inputs["pooled_projections"],
        encoder_hidden_states=inputs["encoder_hidden_states"],
        txt_ids=inputs["txt_ids"],
        img_ids=inputs["img_ids"],
        return_dict=False,
    )[0]


def unet_step(
    unet: nn.Module, latents: torch.Tensor, timestep: torch.Tensor, inputs: dict
) -> torch.Tensor:
    """One denoiser step: a UNet2DConditionModel, an SD3Transformer2DModel (pooled inputs) or a
    FluxTransformer2DModel (pooled inputs and rotary position ids)."""
    if "img_ids" in inputs:
        return _flux_step(unet, latents, timestep, inputs)
    if "pooled_projections" in inputs:
        return unet(
            hidden_states=latents,
            encoder_hidden_states=inputs["encoder_hidden_states"],
            pooled_projections=inputs["pooled_projections"],
            timestep=timestep.expand(latents.shape[0]),
            return_dict=False,
        )[0]
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
    # Transformers take the flow-match time in [0, 1000] as a float; UNets a discrete step.
    time_dtype = DTYPES[cell.precision] if spec.is_transformer else torch.long
    latents = _latents(cell, spec, batch)
    inputs = {
        "latents": pack_latents(latents) if spec.is_flux else latents,
        "timestep": torch.full((batch,), 500, device=cell.device, dtype=time_dtype),
        **_unet_conditioning(cell, spec, batch),
    }

    def run(modules, inputs):
        return unet_step(modules[spec.denoiser], inputs["latents"], inputs["timestep"], inputs)

    return Workload(
        cell, spec, modules, inputs, run, images_per_call=cell.batch_size, iterations_per_call=1
    )


def decode_latents(spec: ModelSpec, vae: nn.Module, latents: torch.Tensor) -> torch.Tensor:
    """Latents to pixels as the pipelines do: unscale (and unshift, SD3), then decode.

    The tiny autoencoders (TAESD) work on scaled latents: their scaling factor is 1 and no shift.
    """
    if type(vae).__name__ == "AutoencoderTiny":
        return vae.decode(latents).sample
    return vae.decode(latents / spec.scaling_factor + spec.shift_factor).sample


def _vae_decode(cell: Cell, spec: ModelSpec, modules: dict[str, nn.Module]) -> Workload:
    inputs = {"latents": _latents(cell, spec, cell.batch_size)}

    def run(modules, inputs):
        return decode_latents(spec, modules["vae"], inputs["latents"])

    return Workload(
        cell, spec, modules, inputs, run, images_per_call=cell.batch_size, iterations_per_call=0
    )


SD_SCHEDULER_CONFIG = {  # the scaled-linear schedule every SD1.x/2.x/XL checkpoint ships with
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "steps_offset": 1,
}


FLUX_SHIFT = {
    "base_image_seq_len": 256,
    "max_image_seq_len": 4096,
    "base_shift": 0.5,
    "max_shift": 1.15,
}
FLUX_SCHEDULER_CONFIGS = {  # black-forest-labs/FLUX.1-dev and -schnell scheduler_config.json
    "flow-match-dynamic": {"num_train_timesteps": 1000, "shift": 3.0, "use_dynamic_shifting": True, **FLUX_SHIFT},
    "flow-match-unshifted": {"num_train_timesteps": 1000, "shift": 1.0, "use_dynamic_shifting": False, **FLUX_SHIFT},
}  # fmt: skip


def set_timesteps(scheduler, spec: ModelSpec, cell: Cell) -> None:
    """The schedule of `cell.steps` steps; FLUX's as FluxPipeline sets it (linear sigmas, and a
    shift mu growing linearly with the image's token count between 256 and 4096 tokens)."""
    if not spec.is_flux:
        scheduler.set_timesteps(cell.steps, device=cell.device)
        return
    tokens = (cell.height // 16) * (cell.width // 16)
    s = FLUX_SHIFT
    slope = (s["max_shift"] - s["base_shift"]) / (s["max_image_seq_len"] - s["base_image_seq_len"])
    mu = s["base_shift"] + slope * (tokens - s["base_image_seq_len"])
    sigmas = [
        1.0 - i * (1.0 - 1.0 / cell.steps) / max(cell.steps - 1, 1) for i in range(cell.steps)
    ]
    scheduler.set_timesteps(sigmas=sigmas, device=cell.device, mu=mu)


def make_scheduler(spec: ModelSpec | None = None):
    """The scheduler the model's pipeline ships with, built from its published config (no download).

    euler: SD1.x/SDXL's Euler. euler-ancestral-trailing: stabilityai/sdxl-turbo. lcm: the LCM-LoRA
    pipelines' LCMScheduler. flow-match: SD3.5's FlowMatchEulerDiscreteScheduler (shift 3.0).
    flow-match-dynamic / -unshifted: FLUX.1 [dev] / [schnell] scheduler_config.json (the shift
    follows the image's token count / is 1).
    """
    import diffusers

    kind = spec.scheduler if spec is not None else "euler"
    if kind == "flow-match":
        return diffusers.FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0)
    if kind in FLUX_SCHEDULER_CONFIGS:
        return diffusers.FlowMatchEulerDiscreteScheduler(**FLUX_SCHEDULER_CONFIGS[kind])
    if kind == "lcm":
        return diffusers.LCMScheduler(**SD_SCHEDULER_CONFIG, timestep_spacing="leading")
    if kind == "euler-ancestral-trailing":
        return diffusers.EulerAncestralDiscreteScheduler(
            **SD_SCHEDULER_CONFIG, timestep_spacing="trailing"
        )
    return diffusers.EulerDiscreteScheduler(**SD_SCHEDULER_CONFIG, timestep_spacing="leading")


def _pipeline(cell: Cell, spec: ModelSpec, modules: dict[str, nn.Module]) -> Workload:
    """A whole txt2img call: encode prompts, `steps` guided denoiser steps with the scheduler, decode."""
    inputs = {
        **_prompt_inputs(spec, guided_batch(cell), cell.device),
        "noise": _latents(cell, spec, cell.batch_size, seed=5),
        **{
            k: v
            for k, v in _unet_conditioning(cell, spec, guided_batch(cell)).items()
            if k == "time_ids"
        },
    }
    scheduler = make_scheduler(spec)

    def sampler(cache: str):
        def run(modules, inputs):
            hidden, pooled = encode_text(spec, modules, inputs["ids"], inputs.get("t5_ids"))
            conditioning = {"encoder_hidden_states": hidden}
            if spec.is_transformer:
                conditioning["pooled_projections"] = pooled
            elif pooled is not None:
                conditioning.update(text_embeds=pooled, time_ids=inputs["time_ids"])
            if spec.is_flux:
                conditioning.update(flux_positions(cell, spec))
            step = denoiser_step(cache, spec, modules[spec.denoiser])
            latents = denoise(cell, spec, scheduler, step, inputs["noise"], conditioning)
            return decode_latents(spec, modules["vae"], latents)

        return run

    return Workload(
        cell,
        spec,
        modules,
        inputs,
        sampler(cell.cache),
        images_per_call=cell.batch_size,
        iterations_per_call=cell.steps,
        reference_run=sampler("none") if cell.cache != "none" else None,
    )


def denoiser_step(cache: str, spec: ModelSpec, denoiser: nn.Module) -> DenoiserStep:
    """THE STEP-CACHE HOOK (the `cache` axis): the function the sampling loop calls per step.

    Called once per sampling call (one timed pipeline call), so an implementation's state lasts
    one batch of images. `cache` is the cell's canonical cache value ("none", "deepcache:3",
    "fbcache:0.12"); "none" gives the plain denoiser step. Other kinds come from the registry in
    models/step_cache.py, where each implementation module lands with its fidelity tolerance;
    the returned function takes (latents, timestep, conditioning, step index from 0).
    """
    setting = parse_cache(cache)
    if setting.kind == "none":
        return lambda latents, timestep, conditioning, index: unet_step(
            denoiser, latents, timestep, conditioning
        )
    return step_cache.factory(setting.kind)(setting, spec, denoiser)


def denoise(
    cell: Cell,
    spec: ModelSpec,
    scheduler,
    step: DenoiserStep,
    noise: torch.Tensor,
    conditioning: dict,
) -> torch.Tensor:
    """The sampling loop: `cell.steps` denoiser steps (on 2 x batch with cfg), scheduler updates.

    `step` is what `denoiser_step` returned: the plain denoiser, or one with a step cache.
    """
    # Seeded per call, so ancestral / consistency samplers give the reference the same noise.
    generator = torch.Generator(device=noise.device).manual_seed(6)
    set_timesteps(scheduler, spec, cell)
    latents = noise * getattr(scheduler, "init_noise_sigma", 1.0)
    if spec.is_flux:
        latents = pack_latents(latents)
    for index, t in enumerate(scheduler.timesteps):
        model_input = torch.cat([latents] * 2) if cell.cfg else latents
        if not spec.is_transformer:
            model_input = scheduler.scale_model_input(model_input, t)
        timestep = t.to(model_input.dtype) if spec.is_transformer else t
        prediction = step(model_input, timestep.reshape(1), conditioning, index)
        if cell.cfg:
            uncond, text = prediction.chunk(2)
            prediction = uncond + GUIDANCE_SCALE * (text - uncond)
        step_output = scheduler.step(prediction, t, latents, generator=generator)
        latents = step_output.prev_sample.to(latents.dtype)
    if spec.is_flux:
        return unpack_latents(latents, *noise.shape[-2:])
    return latents
