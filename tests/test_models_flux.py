"""FLUX.1 [schnell] and [dev]: published configs, FLOPs at 1024 px, the tiny variant's every stage,
FluxPipeline's inputs and schedule, and the CPU's refusal of the 12B denoiser."""

from __future__ import annotations

import re

import pytest
import torch
from cells import cpu_cell

from sdbench.cell import Cell
from sdbench.models.registry import MODELS, get_model
from sdbench.models.workload import (
    build_workload,
    make_scheduler,
    pack_latents,
    set_timesteps,
    unpack_latents,
)
from sdbench.runner.capability import unsupported_reason


def _cell(model: str = "tiny-flux", stage: str = "pipeline", **kwargs) -> Cell:
    values = {"width": 96, "batch_size": 2, "cfg": False, "steps": 2}
    return cpu_cell(model, stage, **{**values, **kwargs})


def test_flux_models_follow_the_model_cards_usual_use():
    schnell, dev = get_model("flux-schnell"), get_model("flux-dev")
    assert (schnell.default_steps, schnell.default_cfg) == (4, False)
    assert (dev.default_steps, dev.default_cfg) == (28, False)
    assert dev.guidance_embedded and not schnell.guidance_embedded
    assert (schnell.t5_length, dev.t5_length) == (256, 512)
    assert schnell.t5_encoder == dev.t5_encoder == "text_encoder_2"
    assert dev.components["vae"].config["latent_channels"] == 16
    assert set(dev.components) == {"transformer", "vae", "text_encoder", "text_encoder_2"}


def test_dev_differs_from_schnell_only_by_its_guidance_embedder():
    from sdbench.models.build import count_parameters

    schnell = count_parameters(MODELS["flux-schnell"].components["transformer"])
    dev = count_parameters(MODELS["flux-dev"].components["transformer"])
    # timestep-sized MLP for the guidance scale: 256 -> 3072 -> 3072
    assert dev - schnell == 256 * 3072 + 3072 + 3072 * 3072 + 3072


@pytest.mark.parametrize("stage", ["text_encoder", "unet", "vae_decode", "pipeline"])
@pytest.mark.parametrize("cfg", [False, True])
def test_every_stage_of_the_tiny_flux_model_runs(stage, cfg):
    output = build_workload(_cell(stage=stage, cfg=cfg)).call()
    guided = 4 if cfg else 2
    expected = {
        "text_encoder": (guided, 16, 64),  # T5 tokens x T5 width (the pooled CLIP vector aside)
        "unet": (guided, (64 // 16) * (96 // 16), 64),  # packed 2x2 latent tokens
        "vae_decode": (2, 3, 64, 96),
        "pipeline": (2, 3, 64, 96),
    }[stage]
    assert tuple(output.shape) == expected
    assert torch.isfinite(output).all()


def test_packing_is_undone_exactly_by_unpacking():
    latents = torch.randn(2, 16, 8, 12)
    tokens = pack_latents(latents)
    assert tuple(tokens.shape) == (2, 4 * 6, 64)
    assert torch.equal(unpack_latents(tokens, 8, 12), latents)
    # a token is one 2x2 patch, channel-major, as FluxPipeline._pack_latents lays it out
    assert torch.equal(tokens[0, 1], latents[0, :, 0:2, 2:4].reshape(-1))


def test_dev_gets_the_embedded_guidance_scale_and_schnell_none():
    dev_inputs = build_workload(_cell("tiny-flux", "unet")).inputs
    assert dev_inputs["guidance"].tolist() == [3.5]
    assert tuple(dev_inputs["img_ids"].shape) == (4 * 6, 3)
    assert dev_inputs["img_ids"][7].tolist() == [0.0, 1.0, 1.0]  # row 1, column 1 of 6


def test_flux_schedules_are_fluxpipelines():
    dev, schnell = make_scheduler(get_model("flux-dev")), make_scheduler(get_model("flux-schnell"))
    set_timesteps(schnell, get_model("flux-schnell"), _cell("flux-schnell", steps=4))
    # shift 1: the linear sigmas 1, 0.75, 0.5, 0.25 as timesteps
    assert schnell.timesteps.tolist() == pytest.approx([1000, 750, 500, 250])
    set_timesteps(dev, get_model("flux-dev"), _cell("flux-dev", steps=4, height=1024, width=1024))
    # 4096 tokens: mu = max_shift = 1.15, sigma' = e^mu / (e^mu + 1/sigma - 1)
    shifted = [2.7183**1.15 / (2.7183**1.15 + 1 / s - 1) * 1000 for s in (1, 0.75, 0.5, 0.25)]
    assert dev.timesteps.tolist() == pytest.approx(shifted, rel=1e-3)


@pytest.mark.parametrize("stage", ["unet", "pipeline"])
@pytest.mark.parametrize("model", ["flux-schnell", "flux-dev"])
def test_a_cpu_refuses_the_12b_denoiser_with_the_reason_and_the_work(model, stage):
    reason = unsupported_reason(_cell(model, stage, height=1024, width=1024, batch_size=1))
    assert reason.startswith("FLUX.1's 12B-parameter transformer needs 24 GB")
    per_step = {"flux-dev": 74.4, "flux-schnell": 69.4}[model]  # TFLOP at 1024 px, no cfg
    steps = 2 if stage == "pipeline" else 1
    stated = re.search(r"= ([\d,]+) TFLOP\)$", reason)
    assert int(stated[1].replace(",", "")) == pytest.approx(per_step * steps, abs=1)


def test_a_cpu_runs_flux_text_encoding_and_decoding_and_the_tiny_model():
    assert unsupported_reason(_cell("flux-dev", "text_encoder")) is None
    assert unsupported_reason(_cell("flux-dev", "vae_decode")) is None
    assert unsupported_reason(_cell("tiny-flux", "pipeline")) is None


def test_flux_keeps_its_own_attention_processors():
    reason = unsupported_reason(_cell("tiny-flux", "unet", attention="classic"))
    assert "keeps its joint-attention processors" in reason


@pytest.mark.slow
@pytest.mark.parametrize("model", ["flux-schnell", "flux-dev"])
def test_flux_denoiser_flops_at_1024_px_on_meta(model):
    from sdbench.models.flops import count_flops

    flops = count_flops(model, "unet", 1024, 1024, 1, False, 28)
    # 4096 image + 512 (dev) or 256 (schnell) T5 tokens; ~6.45e9 parameters act per token
    # (double blocks: one stream's weights per token) plus attention over the joint sequence.
    tokens = 4096 + get_model(model).t5_length
    assert flops == pytest.approx(2 * 6.45e9 * tokens + 57 * 4 * tokens**2 * 3072, rel=0.02)


def test_the_flops_table_holds_both_flux_models_at_1024_px():
    from sdbench.analysis.costs import cost_table, stage_cost
    from sdbench.analysis.workload import ImageWorkload

    table = cost_table()
    for model in ("flux-schnell", "flux-dev"):
        assert not table[(table["model"] == model) & (table["height"] == 1024)].empty
    dev = stage_cost(ImageWorkload("flux-dev", 1024, 1024, 1, cfg=False), "unet").flops
    assert dev == pytest.approx(7.44e13, rel=0.01)


def test_memory_model_counts_flux_weights_and_names_what_fits_it_in_24_gib():
    from sdbench.analysis.memory_model import GIB, estimate_memory, ways_to_fit
    from sdbench.analysis.workload import ImageWorkload

    flux = ImageWorkload("flux-dev", 1024, 1024, 1, "bf16", cfg=False)
    peak = estimate_memory(flux)
    # bf16: transformer 11.9e9 + T5 4.76e9 + CLIP 0.12e9 + VAE 0.08e9 parameters, 2 bytes each
    assert peak.weights_bytes == pytest.approx(2 * (11.9e9 + 4.76e9 + 0.123e9 + 0.084e9), rel=1e-3)
    assert 32 * GIB < peak.peak_bytes < 40 * GIB
    remedies = ways_to_fit(flux, 24 * GIB)
    assert any(remedy.startswith("model CPU offload") for remedy in remedies)  # a 24 GB card
    assert any(remedy.startswith("int8 weights") for remedy in remedies)
