"""The precision axis: fp8 (quant fp8dq on bf16) through torchao once per module; tf32 as a context."""

from __future__ import annotations

import sys
import types

import pytest
import torch
from torch import nn

from sdbench.cell import Cell
from sdbench.models.workload import ModelCache, build_workload, tf32_context
from sdbench.runner import quantise
from sdbench.runner.fidelity import ReferenceCache


@pytest.fixture
def fake_torchao(monkeypatch):
    """Call to put a torchao.quantization stand-in that records what it was asked to quantise
    in place (torchao's fp8 refuses to run without an fp8 GPU, so the real one runs on GPUs
    only). Install it after building: diffusers probes for torchao when models are built."""
    calls: list[tuple[nn.Module, object, list[str]]] = []

    class Float8DynamicActivationFloat8WeightConfig:
        def __init__(self, granularity=None):
            self.granularity = granularity

    class PerRow:
        pass

    def quantize_(module, config, filter_fn):
        chosen = [name for name, m in module.named_modules() if filter_fn(m, name)]
        calls.append((module, config, chosen))

    quantization = types.ModuleType("torchao.quantization")
    quantization.quantize_ = quantize_
    quantization.Float8DynamicActivationFloat8WeightConfig = (
        Float8DynamicActivationFloat8WeightConfig
    )
    quantization.PerRow = PerRow
    package = types.ModuleType("torchao")
    package.quantization = quantization

    def install() -> list[tuple[nn.Module, object, list[str]]]:
        monkeypatch.setitem(sys.modules, "torchao", package)
        monkeypatch.setitem(sys.modules, "torchao.quantization", quantization)
        return calls

    return install


def test_only_linear_layers_the_fp8_matmul_accepts_are_eligible():
    accept = quantise.eligible("fp8dq")
    assert accept(nn.Linear(64, 128))
    assert not accept(nn.Linear(40, 128))  # 40 is not a multiple of 16
    assert not accept(nn.Conv2d(64, 64, 3))


def test_fp8_precision_quantises_the_unet_once_per_row_and_rebuilds_its_reference(fake_torchao):
    cell = Cell("tiny", "unet", "cpu", 64, 64, 1, "fp8", "sdpa", "none")
    cache, references = ModelCache(), ReferenceCache()
    workload, rebuilt = build_workload(cell, cache), build_workload(cell, cache)
    unet = workload.modules["unet"]
    assert next(unet.parameters()).dtype == torch.bfloat16  # fp8 cells build in bf16
    calls = fake_torchao()

    count = quantise.apply_quant(workload)
    again = quantise.apply_quant(rebuilt)

    assert len(calls) == 1 and again == 0
    module, config, chosen = calls[0]
    assert module is unet and type(config.granularity).__name__ == "PerRow"
    expected = [n for n, m in unet.named_modules() if isinstance(m, nn.Linear)]
    assert count == len(chosen) > 0 and set(chosen) <= set(expected)
    reference = references.module(unet)
    assert reference is not unet and next(reference.parameters()).dtype == torch.float32


def test_cells_without_a_quant_scheme_are_left_to_build_and_context(fake_torchao):
    cell = Cell("tiny", "unet", "cpu", 64, 64, 1, "bf16", "sdpa", "none")
    workload = build_workload(cell)
    calls = fake_torchao()
    assert quantise.apply_quant(workload) == 0
    assert calls == []


def test_tf32_is_enabled_only_inside_tf32_cells():
    torch.backends.cuda.matmul.allow_tf32 = False
    with tf32_context(True):
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    assert not torch.backends.cuda.matmul.allow_tf32
