"""Memory modes and quant schemes applied to real (tiny) workloads on the CPU."""

from __future__ import annotations

import pytest
import torch

from sdbench.cell import Cell, Measure
from sdbench.models.workload import ModelCache, build_workload
from sdbench.runner.capability import unsupported_reason
from sdbench.runner.measure import new_state, run_cell
from sdbench.runner.memory_modes import apply_memory, memory_warnings

ONE_CALL = Measure(warmup=0, min_repeats=1, max_repeats=1, max_time_s=0.0)


def _cell(stage="unet", resolution=64, batch=1, **levers) -> Cell:
    return Cell("tiny", stage, "cpu", resolution, resolution, batch, "fp32", "sdpa", "none",
                steps=2, **levers)  # fmt: skip


@pytest.mark.parametrize(("scheme", "tolerance"), [("int8wo", 0.1), ("int8dq", 0.15)])
def test_int8_schemes_give_ok_rows_whose_fidelity_is_measured_and_passes(scheme, tolerance):
    pytest.importorskip("torchao")
    state = new_state("cpu")
    row = run_cell(_cell(quant=scheme), ONE_CALL, state)
    plain = run_cell(_cell(), ONE_CALL, state)
    assert row["status"] == "ok", row["error"]
    assert row["fidelity_tolerance"] == tolerance and row["fidelity_ok"]
    # Quantisation changes the output (the reference is the unquantised model), within tolerance.
    assert plain["ref_rel_err"] < 1e-5 < row["ref_rel_err"] < tolerance


def test_quantised_and_offloaded_modules_are_cached_apart_from_plain_ones():
    cache = ModelCache()
    plain = build_workload(_cell(), cache).modules["unet"]
    assert build_workload(_cell(quant="int8wo"), cache).modules["unet"] is not plain
    assert build_workload(_cell(quant="none"), cache).modules["unet"] is not plain  # rebuilt
    assert ModelCache.key(MODEL, "vae", _cell(quant="int8wo")) == ModelCache.key(
        MODEL, "vae", _cell()
    )
    offload = _cell(stage="pipeline", memory="model_offload")
    assert ModelCache.key(MODEL, "vae", offload) != ModelCache.key(MODEL, "vae", _cell())


MODEL = build_workload(_cell(), ModelCache()).spec


def test_vae_modes_follow_each_cell_on_shared_modules():
    cache = ModelCache()
    tiled = build_workload(_cell("vae_decode", memory="vae_slicing+vae_tiling"), cache)
    apply_memory(tiled)
    vae = tiled.modules["vae"]
    assert vae.use_tiling and vae.use_slicing
    plain = build_workload(_cell("vae_decode"), cache)
    apply_memory(plain)
    assert plain.modules["vae"] is vae and not vae.use_tiling and not vae.use_slicing


def test_vae_tiling_that_cannot_tile_at_this_size_says_so():
    small = build_workload(_cell("vae_decode", memory="vae_tiling"))
    apply_memory(small)
    assert (
        "vae_tiling did not tile: a 64x64 image fits in the VAE's 512 px tile"
        in (memory_warnings(small)[0])
    )
    large = build_workload(_cell("vae_decode", resolution=576, memory="vae_tiling"))
    apply_memory(large)
    assert memory_warnings(large) == []


def test_attention_slicing_installs_diffusers_sliced_processors_and_keeps_the_output():
    plain = build_workload(_cell("pipeline"))
    expected = plain.call()
    sliced = build_workload(_cell("pipeline", memory="attention_slicing"))
    apply_memory(sliced)
    processors = {type(p).__name__ for p in sliced.modules["unet"].attn_processors.values()}
    assert processors == {"SlicedAttnProcessor"}
    torch.testing.assert_close(sliced.call(), expected, rtol=1e-4, atol=1e-5)


def test_model_offload_hooks_every_component_through_diffusers_and_keeps_the_output():
    pytest.importorskip("accelerate")
    plain = build_workload(_cell("pipeline"))
    expected = plain.call()
    # The capability check refuses offload on a CPU (nothing to offload to); the mechanism
    # itself runs anywhere, so it is tested here with the CPU as the "accelerator".
    offloaded = build_workload(_cell("pipeline", memory="model_offload"))
    apply_memory(offloaded)
    assert all(hasattr(m, "_hf_hook") for m in offloaded.modules.values())
    assert len(offloaded.extra_context) == 1  # models go back to the host after each call
    torch.testing.assert_close(offloaded.call(), expected)


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        (_cell("pipeline", memory="model_offload"), "offload moves weights from device memory"),
        (_cell("pipeline", memory="sequential_offload"), "offload moves weights"),
        (_cell("unet", memory="vae_tiling"), "memory mode vae_tiling applies to pipeline cells"),
        (_cell("vae_decode", memory="attention_slicing"), "memory mode attention_slicing"),
        (_cell("vae_decode", quant="int8wo"), "int8wo quantises the denoiser's"),
        (_cell(quant="nf4"), "nf4 runs through bitsandbytes' CUDA kernels; not on cpu"),
        (_cell(quant="fp8dq"), "fp8dq needs a GPU with fp8 matrix units"),
    ],
)
def test_levers_the_cpu_or_the_stage_cannot_use_are_unsupported_with_a_reason(cell, reason):
    assert unsupported_reason(cell).startswith(reason)


def test_attention_slicing_with_another_attention_kernel_is_unsupported():
    cell = Cell("tiny", "pipeline", "cpu", 64, 64, 1, "fp32", "math", "none",
                memory="attention_slicing")  # fmt: skip
    assert "run it with attention sdpa" in unsupported_reason(cell)
