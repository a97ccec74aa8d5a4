"""Step caching: DeepCache on UNets, first-block cache on FLUX and SD3 transformers."""

from __future__ import annotations

import pytest
import torch

from sdbench.cell import Cell
from sdbench.models import workload as workloads
from sdbench.models.deepcache import shallow_forward


def _tiny_sdxl_unet() -> torch.nn.Module:
    """An SDXL-shaped UNet (first block without attention, added text/time embeddings)."""
    import diffusers

    from sdbench.models.registry import TINY_UNET

    torch.manual_seed(0)
    config = {
        **TINY_UNET,
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
        "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
        "addition_embed_type": "text_time",
        "addition_time_embed_dim": 8,
        "projection_class_embeddings_input_dim": 32 + 6 * 8,
    }
    return diffusers.UNet2DConditionModel(**config).eval()


def _unet_and_inputs(shape: str) -> tuple[torch.nn.Module, tuple, dict]:
    if shape == "sdxl":
        added = {"text_embeds": torch.randn(2, 32), "time_ids": torch.ones(2, 6)}
        args = (torch.randn(2, 4, 8, 8), torch.tensor([500, 500]), torch.randn(2, 77, 32))
        return _tiny_sdxl_unet(), args, {"added_cond_kwargs": added}
    workload = workloads.build_workload(
        Cell("tiny", "unet", "cpu", 64, 64, 1, "fp32", "sdpa", "none")
    )
    inputs = workload.inputs
    args = (inputs["latents"], inputs["timestep"], inputs["encoder_hidden_states"])
    return workload.modules["unet"], args, {}


@pytest.mark.parametrize("shape", ["sd15", "sdxl"])
def test_shallow_step_with_a_fresh_deep_feature_is_the_full_step_exactly(shape):
    unet, args, added = _unet_and_inputs(shape)
    kept = {}
    hook = unet.up_blocks[-1].register_forward_pre_hook(
        lambda _m, _a, kwargs: kept.update(feature=kwargs["hidden_states"]), with_kwargs=True
    )
    with torch.no_grad():
        full = unet(*args, **added).sample
        hook.remove()
        shallow = shallow_forward(unet, kept["feature"], *args, **added).sample
    assert torch.equal(full, shallow)
    assert unet.down_blocks[0].downsamplers is not None  # switched back on after the call


def _denoise(model: str, cache: str, steps: int):
    """The final latent of a tiny model's sampling loop with `cache`, and the step function."""
    cell = Cell(model, "pipeline", "cpu", 64, 64, 1, "fp32", "math", "none", cfg=True, steps=steps)
    workload = workloads.build_workload(cell)
    spec, modules, inputs = workload.spec, workload.modules, workload.inputs
    with torch.no_grad():
        hidden, pooled = workloads.encode_text(spec, modules, inputs["ids"], inputs.get("t5_ids"))
        conditioning = {"encoder_hidden_states": hidden}
        if spec.is_transformer:
            conditioning["pooled_projections"] = pooled
        if spec.is_flux:
            conditioning.update(workloads.flux_positions(cell, spec))
        step = workloads.denoiser_step(cache, spec, modules[spec.denoiser])
        scheduler = workloads.make_scheduler(spec)
        latent = workloads.denoise(cell, spec, scheduler, step, inputs["noise"], conditioning)
    return latent, step


def _relative_error(output: torch.Tensor, reference: torch.Tensor) -> float:
    return float((output - reference).norm() / reference.norm())


def test_deepcache_runs_the_whole_unet_every_nth_step_and_stays_close():
    reference, _ = _denoise("tiny", "none", steps=6)
    every_second, step = _denoise("tiny", "deepcache:2", steps=6)
    assert (step.calls, step.full_calls) == (6, 3)
    every_third, step = _denoise("tiny", "deepcache:3", steps=6)
    assert (step.calls, step.full_calls) == (6, 2)
    # the shallow steps change the result, more when fewer steps are full
    assert 1e-3 < _relative_error(every_second, reference) < _relative_error(every_third, reference)
    assert _relative_error(every_third, reference) < 0.25


def test_a_loop_shorter_than_the_interval_is_the_uncached_pipeline_exactly():
    reference, _ = _denoise("tiny", "none", steps=2)
    cached, step = _denoise("tiny", "deepcache:3", steps=2)
    assert step.full_calls == 1 and step.calls == 2
    reference_one, _ = _denoise("tiny", "none", steps=1)
    cached_one, _ = _denoise("tiny", "deepcache:2", steps=1)
    assert torch.equal(cached_one, reference_one) and not torch.equal(cached, reference)


@pytest.mark.parametrize(
    ("model", "resolution", "fraction"), [("sd15", 512, 0.380), ("tiny", 64, 0.518)]
)
def test_a_shallow_deepcache_step_does_a_fraction_of_the_unets_flops(model, resolution, fraction):
    from torch.utils.flop_counter import FlopCounterMode

    cell = Cell(model, "unet", "meta", resolution, resolution, 1, "fp32", "math", "none")
    workload = workloads.build_workload(cell)
    unet, inputs = workload.modules["unet"], workload.inputs
    conditioning = {"encoder_hidden_states": inputs["encoder_hidden_states"]}

    def two_steps_flops(cache: str) -> int:
        step = workloads.denoiser_step(cache, workload.spec, unet)
        with FlopCounterMode(display=False) as counter:
            for index in range(2):
                step(inputs["latents"], inputs["timestep"], conditioning, index)
        return counter.get_total_flops()

    full_step = two_steps_flops("none") / 2
    shallow_step = two_steps_flops("deepcache:2") - full_step
    # SD1.5: the first level (320 channels, 64x64 latents, its attention) is 38% of a step,
    # so deepcache:N approaches 1/0.38 = 2.6x fewer UNet FLOPs as N grows
    assert shallow_step / full_step == pytest.approx(fraction, abs=0.005)


def test_the_unet_is_itself_again_after_a_cached_step():
    unet, args, _ = _unet_and_inputs("sd15")
    spec = workloads.get_model("tiny")
    conditioning = {"encoder_hidden_states": args[2]}
    with torch.no_grad():
        before = unet(*args).sample
        step = workloads.denoiser_step("deepcache:2", spec, unet)
        step(args[0], args[1], conditioning, 0)
        step(args[0], args[1], conditioning, 1)
        assert "forward" not in vars(unet)
        assert torch.equal(unet(*args).sample, before)


@pytest.mark.parametrize("model", ["tiny-flux", "tiny-sd3"])
def test_first_block_cache_skips_steps_whose_first_block_barely_changed(model):
    reference, _ = _denoise(model, "none", steps=6)
    strict, strict_step = _denoise(model, "fbcache:0.001", steps=6)
    assert strict_step.full_calls == 6 and torch.equal(strict, reference)
    # random tiny weights change the first block's residual by ~0.5-1.2 per step
    loose, loose_step = _denoise(model, "fbcache:0.99", steps=6)
    assert loose_step.calls == 6 and 1 <= loose_step.full_calls < 6
    skipped = [change for change in loose_step.changes if change < 0.99]
    assert len(skipped) == 6 - loose_step.full_calls
    assert _relative_error(loose, reference) > 1e-3


def test_a_skipped_step_adds_what_the_other_blocks_added_at_the_last_full_step():
    cell = Cell("tiny-flux", "unet", "cpu", 64, 64, 1, "fp32", "sdpa", "none", cfg=False)
    workload = workloads.build_workload(cell)
    transformer, inputs = workload.modules["transformer"], workload.inputs
    step = workloads.denoiser_step("fbcache:0.5", workload.spec, transformer)
    with torch.no_grad():
        full = step(inputs["latents"], inputs["timestep"], inputs, 0)
        again = step(inputs["latents"], inputs["timestep"], inputs, 1)  # same input: no change
    assert (step.full_calls, step.changes) == (1, [0.0])
    assert torch.allclose(again, full, atol=1e-6)
    assert "forward" not in vars(transformer.transformer_blocks[0])
    assert torch.equal(workload.call(), full)
