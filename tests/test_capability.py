"""Capability detection: which cells a device can run, and the reason for the rest."""

from __future__ import annotations

import warnings

import pytest
import torch

from sdbench.cell import Cell
from sdbench.runner import capability
from sdbench.runner.capability import AttentionCall, unsupported_reason


def cell(
    attention: str = "sdpa",
    precision: str = "fp32",
    device: str = "cpu",
    stage: str = "unet",
    compile_mode: str = "none",
    model: str = "tiny",
) -> Cell:
    return Cell(model, stage, device, 64, 64, 1, precision, attention, compile_mode)


@pytest.mark.parametrize("attention", ["sdpa", "math", "flash", "classic", "sliced"])
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_cpu_runs_its_kernels_in_every_float_precision(attention, precision):
    assert unsupported_reason(cell(attention, precision)) is None


@pytest.mark.parametrize(
    ("attention", "precision", "reason"),
    [
        ("efficient", "fp32", "the efficient SDPA kernel exists only on CUDA GPUs"),
        ("cudnn", "bf16", "the cudnn SDPA kernel exists only on CUDA GPUs"),
        ("xformers", "fp16", "xformers kernels run on CUDA GPUs only"),
        ("sdpa", "tf32", "tf32 is a tensor-core mode of NVIDIA Ampere+"),
        ("sdpa", "fp8", "fp8 needs a GPU with fp8 matrix units"),
    ],
)
def test_cpu_refuses_gpu_only_settings_with_a_reason(attention, precision, reason):
    assert unsupported_reason(cell(attention, precision)).startswith(reason)


def test_mps_refuses_cuda_kernels_and_compilation():
    assert "CUDA-only" in unsupported_reason(cell("flash", "fp16", device="mps"))
    assert "MPS" in unsupported_reason(cell(compile_mode="default", device="mps"))


def test_reduce_overhead_needs_cuda_graphs():
    assert "CUDA graphs" in unsupported_reason(cell(compile_mode="reduce-overhead"))
    assert unsupported_reason(cell(compile_mode="max-autotune")) is None


def test_cpu_compilation_needs_a_cxx_compiler(monkeypatch):
    monkeypatch.setattr(capability.shutil, "which", lambda name: None)
    assert "C++ compiler" in unsupported_reason(cell(compile_mode="default"))


@pytest.mark.parametrize("stage", ["vae_decode", "text_encoder"])
def test_slicing_applies_to_the_unet_only(stage):
    assert "UNet only" in unsupported_reason(cell("sliced", stage=stage))
    assert unsupported_reason(cell("sliced", stage="pipeline")) is None


@pytest.fixture
def nvidia(monkeypatch):
    """Pretend the cell's device is an NVIDIA GPU of a chosen compute capability."""

    def set_capability(major: int, minor: int) -> None:
        monkeypatch.setattr(capability, "_is_rocm", lambda: False)
        monkeypatch.setattr(capability, "_cuda_capability", lambda device: (major, minor))
        monkeypatch.setattr(capability, "_kernel_shape_reason", lambda cell, kind: None)
        monkeypatch.setattr(torch.backends.cuda, "is_flash_attention_available", lambda: True)

    return set_capability


def test_turing_has_no_bf16_or_tf32(nvidia):
    nvidia(7, 5)
    assert "compute capability 8.0+" in unsupported_reason(cell(precision="bf16", device="cuda:0"))
    assert "this one is 7.5" in unsupported_reason(cell(precision="tf32", device="cuda:0"))
    assert unsupported_reason(cell(precision="fp16", device="cuda:0")) is None


def test_fp8_needs_ada_or_hopper_and_torchao(nvidia, monkeypatch):
    nvidia(8, 0)
    assert "8.9+" in unsupported_reason(cell(precision="fp8", device="cuda:0"))
    nvidia(9, 0)
    monkeypatch.setattr(capability.importlib.util, "find_spec", lambda name: None)
    assert "torchao" in unsupported_reason(cell(precision="fp8", device="cuda:0"))


def test_fp8_leaves_the_vae_alone(nvidia):
    nvidia(9, 0)
    reason = unsupported_reason(cell(precision="fp8", device="cuda:0", stage="vae_decode"))
    assert "VAE stays bf16" in reason


def test_flash_and_cudnn_need_half_precision_on_cuda(nvidia):
    nvidia(9, 0)
    assert "fp16/bf16 only" in unsupported_reason(cell("flash", "fp32", device="cuda:0"))
    assert "fp16/bf16 only" in unsupported_reason(cell("cudnn", "tf32", device="cuda:0"))
    assert unsupported_reason(cell("efficient", "fp32", device="cuda:0")) is None
    assert unsupported_reason(cell("flash", "bf16", device="cuda:0")) is None


def test_attention_calls_are_the_stages_real_sdpa_shapes():
    unet = capability.attention_calls("tiny", "unet", 64, 64)
    # tiny UNet: 4 heads; self-attention over the 8x8 and 4x4 latents, cross-attention to 77 tokens
    assert {(c.query[1:], c.key[2]) for c in unet} == {
        ((4, 64, 8), 64),
        ((4, 64, 8), 77),
        ((4, 16, 16), 16),
        ((4, 16, 16), 77),
    }
    assert all(c.query[0] == 2 and c.mask is None and not c.is_causal for c in unet)  # cfg batch
    (text,) = capability.attention_calls("tiny", "text_encoder", 64, 64)
    assert text.is_causal
    pipeline = capability.attention_calls("tiny", "pipeline", 64, 64)
    assert set(unet) | {text} <= set(pipeline)


def test_probe_reports_pytorchs_own_refusal():
    def refuse_big_heads(params, debug):
        if params.query.shape[-1] > 256:
            warnings.warn(
                "Flash attention requires the last dimension to be at most 256.", stacklevel=2
            )
            return False
        return True

    small = AttentionCall((2, 8, 64, 40), (2, 8, 77, 40), (2, 8, 77, 40), None, False)
    vae = AttentionCall((1, 1, 64, 512), (1, 1, 64, 512), (1, 1, 64, 512), None, False)
    assert capability.probe_kernel(refuse_big_heads, small, "cpu", torch.float16) is None
    reason = capability.probe_kernel(refuse_big_heads, vae, "cpu", torch.float16)
    assert reason == "Flash attention requires the last dimension to be at most 256."


def test_kernel_shape_check_names_the_attention_it_cannot_run(monkeypatch):
    def refuse_long_keys(params, debug):
        return params.key.shape[2] != 77

    monkeypatch.setattr(torch.backends.cuda, "can_use_flash_attention", refuse_long_keys)
    reason = capability._kernel_shape_reason(cell("flash", "fp16"), "cuda")
    assert reason.startswith("the flash SDPA kernel cannot run attention with 4 head(s) of ")
    assert "over 16x77 tokens" in reason or "over 64x77 tokens" in reason
    assert capability._kernel_shape_reason(cell("math", "fp16"), "cuda") is None
