"""Stage workloads for the new kinds: MMDiT denoiser, SD3 text conditioning, TAESD, schedulers."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from cells import cpu_cell

from sdbench.cell import Cell
from sdbench.models.build import materialise
from sdbench.models.registry import MODELS, get_model
from sdbench.models.workload import ModelCache, build_workload, encode_text, make_scheduler


def _cell(model: str, stage: str, **kwargs) -> Cell:
    return cpu_cell(model, stage, **{"batch_size": 2, "cfg": True, "steps": 2, **kwargs})


@pytest.mark.parametrize("stage", ["text_encoder", "unet", "vae_decode", "pipeline"])
@pytest.mark.parametrize("vae", ["default", "taesd"])
def test_every_stage_of_the_tiny_sd3_model_runs_with_either_autoencoder(stage, vae):
    output = build_workload(_cell("tiny-sd3", stage, vae=vae)).call()
    expected = {
        "text_encoder": (4, 77 + 16, 64),  # CLIP tokens + T5 tokens, T5 width
        "unet": (4, 16, 8, 8),  # 2 x batch with cfg, 16 latent channels
        "vae_decode": (2, 3, 64, 64),
        "pipeline": (2, 3, 64, 64),
    }[stage]
    assert tuple(output.shape) == expected
    assert torch.isfinite(output).all()


def test_taesd_cell_decodes_with_the_tiny_autoencoder_and_caches_it_apart():
    cache = ModelCache()
    default = build_workload(_cell("tiny", "vae_decode"), cache)
    tiny = build_workload(_cell("tiny", "vae_decode", vae="taesd"), cache)
    assert type(default.modules["vae"]).__name__ == "AutoencoderKL"
    assert type(tiny.modules["vae"]).__name__ == "AutoencoderTiny"
    assert tiny.call().shape == default.call().shape == (2, 3, 64, 64)


def test_sd3_text_conditioning_pads_clip_to_t5_width_and_zeros_t5_when_absent():
    spec = get_model("tiny-sd3")
    modules = {
        name: materialise(spec, name, "cpu", "fp32")
        for name in ("text_encoder", "text_encoder_2", "text_encoder_3")
    }
    ids = torch.randint(0, 1000, (3, 77))
    t5_ids = torch.randint(0, 1000, (3, 16))
    hidden, pooled = encode_text(spec, modules, ids, t5_ids)
    assert hidden.shape == (3, 77 + 16, 64) and pooled.shape == (3, 64)
    without_t5 = {k: v for k, v in modules.items() if k != "text_encoder_3"}
    lean, _ = encode_text(spec, without_t5, ids)
    assert torch.equal(lean[:, :77], hidden[:, :77])
    assert not lean[:, 77:].any() and hidden[:, 77:].abs().sum() > 0


def test_sd3_patch_position_table_is_rebuilt_after_materialising():
    from diffusers.models.embeddings import get_2d_sincos_pos_embed

    transformer = materialise(get_model("tiny-sd3"), "transformer", "cpu", "fp32")
    table = transformer.pos_embed.pos_embed
    expected = get_2d_sincos_pos_embed(32, 16, base_size=4, output_type="pt").float()
    assert torch.allclose(table[0], expected)


def test_t5_encoder_has_no_buffers_to_rebuild():
    t5 = materialise(get_model("tiny-sd3"), "text_encoder_3", "cpu", "fp32")
    assert [name for name, _ in t5.named_buffers()] == []


def test_each_model_gets_its_published_scheduler():
    kinds = {
        name: type(make_scheduler(get_model(name))).__name__
        for name in ("sd15", "sdxl-turbo", "lcm-sd15", "sd35-medium")
    }
    assert kinds == {
        "sd15": "EulerDiscreteScheduler",
        "sdxl-turbo": "EulerAncestralDiscreteScheduler",
        "lcm-sd15": "LCMScheduler",
        "sd35-medium": "FlowMatchEulerDiscreteScheduler",
    }
    assert make_scheduler(get_model("sd35-medium")).config.shift == 3.0


@pytest.mark.parametrize("scheduler", ["lcm", "euler-ancestral-trailing"])
def test_noise_injecting_samplers_repeat_exactly_so_fidelity_can_compare(monkeypatch, scheduler):
    spec = dataclasses.replace(get_model("tiny"), name=f"tiny-{scheduler}", scheduler=scheduler)
    monkeypatch.setitem(MODELS, spec.name, spec)
    workload = build_workload(_cell(spec.name, "pipeline", cfg=False, steps=3))
    first, second = workload.call(), workload.call()
    assert torch.equal(first, second) and torch.isfinite(first).all()


def test_a_cell_keeps_only_its_own_stage_resident_so_its_peak_memory_is_its_own():
    from dataclasses import replace

    from sdbench.cell import Cell
    from sdbench.models.workload import ModelCache, build_workload

    cache = ModelCache()
    unet = Cell("tiny", "unet", "cpu", 64, 64, 1, "bf16", "sdpa", "none")
    build_workload(unet, cache)
    assert {key[1] for key in cache._modules} == {"unet"}
    build_workload(replace(unet, stage="text_encoder"), cache)
    assert {key[1] for key in cache._modules} == {"text_encoder"}


def test_fp32_reference_copies_are_freed_after_use():
    from sdbench.cell import Cell
    from sdbench.models.workload import build_workload
    from sdbench.runner.fidelity import ReferenceCache, fidelity

    references = ReferenceCache()
    workload = build_workload(Cell("tiny", "unet", "cpu", 64, 64, 1, "bf16", "sdpa", "none"))
    result = fidelity(workload, workload.call(), references)
    assert result["fidelity_ok"] and result["ref_rel_err"] > 0
    assert set(vars(references)) == {"_outputs"}  # outputs only: no fp32 module stays resident
