"""The fast parts of the harness benchmarks: the random-weight fill they time, and their helpers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from sdbench.models import build
from sdbench.models.registry import get_model
from sdbench.suite import expand, parse_suite
from tests.conftest import REPO


def filled(seed: int) -> nn.Module:
    with torch.device("meta"):
        # The second Linear holds more values than the pool: it is written in two windows.
        module = nn.Sequential(
            nn.Linear(512, 512),
            nn.LayerNorm(512),
            nn.Linear(2048, build._POOL_SIZE // 2048 + 16),
            nn.Conv2d(64, 128, 3),
        )
    module = module.to_empty(device="cpu")
    with torch.no_grad():
        build._fill_random_(module, seed)
    return module


def test_random_weights_are_fixed_by_the_seed():
    first, again, other = filled(0), filled(0), filled(1)
    for a, b, c in zip(first.parameters(), again.parameters(), other.parameters(), strict=True):
        assert torch.equal(a, b)
        if a.ndim > 1:
            assert not torch.equal(a, c)


def test_random_weights_have_variance_one_over_fan_in_and_plain_norms_and_biases():
    module = filled(0)
    for name, parameter in module.named_parameters():
        if parameter.ndim > 1:
            fan_in = parameter[0].numel()
            assert parameter.std().item() * math.sqrt(fan_in) == pytest.approx(1.0, abs=0.02), name
            assert abs(parameter.mean().item()) * math.sqrt(fan_in) < 0.02, name
        elif name.endswith("bias"):
            assert torch.count_nonzero(parameter) == 0, name
        else:
            assert torch.all(parameter == 1.0), name


def test_a_matrix_larger_than_the_pool_is_written_in_full_and_not_repeated():
    big = filled(0)[2].weight.view(-1)
    assert big.numel() > build._POOL_SIZE
    tail = big[build._POOL_SIZE :]
    assert tail.std().item() * math.sqrt(2048) == pytest.approx(1.0, abs=0.05)
    assert not torch.equal(tail[:1000], big[:1000])  # the next window starts elsewhere in the pool


def test_materialise_leaves_the_thread_count_as_it_found_it():
    threads = torch.get_num_threads()
    module = build.materialise(get_model("tiny"), "unet", "cpu", "bf16")
    assert torch.get_num_threads() == threads
    assert {p.dtype for p in module.parameters()} == {torch.bfloat16}
    assert all(torch.isfinite(p.float()).all() for p in module.parameters())


def test_run_efficiency_narrows_the_quick_matrix_to_the_axes_given(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    from run_efficiency import derived_suite

    text = derived_suite(
        REPO / "sdbench" / "suites" / "quick-matrix.toml",
        ["resolution=256", "precision=fp32"],
        "cpu",
    )
    cells = expand(parse_suite(text, source="derived"), ["cpu"])
    assert cells and {(c.height, c.precision, c.device) for c in cells} == {(256, "fp32", "cpu")}
    assert {c.stage for c in cells} == {"unet", "vae_decode", "text_encoder"}
