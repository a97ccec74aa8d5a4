"""Each attention setting really changes the kernel that runs, and all of them compute the same thing."""

from __future__ import annotations

import pytest
import torch

from sdbench.cell import Cell
from sdbench.models.workload import ModelCache, build_workload
from sdbench.runner import kernels

CPU_FLASH = "aten::_scaled_dot_product_flash_attention_for_cpu"
MATH = "aten::_scaled_dot_product_attention_math"


def tiny_cell(attention: str, stage: str = "unet", precision: str = "fp32") -> Cell:
    return Cell("tiny", stage, "cpu", 64, 64, 1, precision, attention, "none")


@pytest.fixture(scope="module")
def models() -> ModelCache:
    return ModelCache()


@pytest.fixture(scope="module")
def math_run(models):
    workload = build_workload(tiny_cell("math"), models)
    return kernels.attention_kernels_used(workload), workload.call()


def relative_error(output: torch.Tensor, reference: torch.Tensor) -> float:
    return float((output.float() - reference.float()).norm() / reference.float().norm())


def test_math_and_flash_run_different_kernels_with_nearly_equal_outputs(models, math_run):
    math_kernels, math_output = math_run
    flash = build_workload(tiny_cell("flash"), models)
    flash_kernels = kernels.attention_kernels_used(flash)

    assert MATH in math_kernels and CPU_FLASH not in math_kernels
    assert CPU_FLASH in flash_kernels and MATH not in flash_kernels
    assert kernels.backends_of(math_kernels) == {"math"}
    assert kernels.backends_of(flash_kernels) == {"flash"}
    error = relative_error(flash.call(), math_output)
    assert 0 < error < 1e-5  # different summation order, same attention


@pytest.mark.parametrize("attention", ["classic", "sliced"])
def test_classic_and_sliced_attention_use_no_sdpa(models, math_run, attention):
    workload = build_workload(tiny_cell(attention), models)
    used = kernels.attention_kernels_used(workload)

    assert not any("scaled_dot_product" in name for name in used), used
    assert "aten::baddbmm" in used
    assert kernels.backends_of(used) == {"classic"}
    assert kernels.kernel_mismatch(workload, used) is None
    assert relative_error(workload.call(), math_run[1]) < 1e-5
    build_workload(tiny_cell("sdpa"), models)  # modules are shared: restore SDPA processors


def test_sdpa_on_cpu_lets_pytorch_pick_the_flash_kernel(models):
    used = kernels.attention_kernels_used(build_workload(tiny_cell("sdpa"), models))
    assert kernels.backends_of(used) == {"flash"}


def test_forced_kernels_match_their_setting(models, math_run):
    assert kernels.kernel_mismatch(build_workload(tiny_cell("math"), models), math_run[0]) is None
    flash = build_workload(tiny_cell("flash"), models)
    assert kernels.kernel_mismatch(flash) is None


def test_kernel_mismatch_reports_a_setting_that_fell_back(models):
    flash = build_workload(tiny_cell("flash"), models)
    message = kernels.kernel_mismatch(flash, {"aten::scaled_dot_product_attention", MATH})
    assert message == "flash attention ran ['math'], not flash"
    mixed = kernels.kernel_mismatch(flash, {CPU_FLASH, MATH})
    assert mixed == "flash attention also ran ['math']"


def test_backends_of_recognises_xformers_calling_aten_kernels_directly():
    assert kernels.backends_of({"aten::_efficient_attention_forward"}) == {"xformers"}
    assert kernels.backends_of({"xformers::efficient_attention_forward_cutlass"}) == {"xformers"}
    sdpa_efficient = {
        "aten::_scaled_dot_product_efficient_attention",
        "aten::_efficient_attention_forward",
    }
    assert kernels.backends_of(sdpa_efficient) == {"efficient"}


def test_classic_text_encoder_uses_eager_attention(models):
    workload = build_workload(tiny_cell("classic", stage="text_encoder"), models)
    used = kernels.attention_kernels_used(workload)
    assert not any("scaled_dot_product" in name for name in used), used
    build_workload(tiny_cell("sdpa", stage="text_encoder"), models)
