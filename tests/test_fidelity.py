"""Numerical fidelity: every ok row carries its error against an fp32 math reference; broken ones fail."""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F

from sdbench.cell import Cell, Measure
from sdbench.models import attention as attention_settings
from sdbench.models.workload import build_workload
from sdbench.runner.compile import CompileRecord
from sdbench.runner.fidelity import TOLERANCE_REL, ReferenceCache, fidelity
from sdbench.runner.measure import new_state, run_cell

FAST = Measure(warmup=0, min_repeats=1, max_repeats=1, max_time_s=0.1)


def tiny(precision: str = "fp32", attention: str = "sdpa", stage: str = "unet") -> Cell:
    return Cell("tiny", stage, "cpu", 64, 64, 1, precision, attention, "none")


@pytest.fixture(scope="module")
def state():
    return new_state("cpu")


def test_bf16_rows_record_their_error_against_the_fp32_reference(state):
    row = run_cell(tiny("bf16", "flash"), FAST, state)

    assert row["status"] == "ok", row["error"]
    assert 1e-4 < row["ref_rel_err"] < TOLERANCE_REL["bf16"]  # bf16 rounding shows, within bounds
    assert row["ref_max_abs_err"] > 0
    assert row["nonfinite"] is False and row["fidelity_ok"] is True
    assert row["fidelity_tolerance"] == TOLERANCE_REL["bf16"]


def test_injected_nan_output_fails_fidelity_with_a_warning(state, monkeypatch):
    monkeypatch.setenv("SDBENCH_INJECT", '{"tiny unet 64x64 bs1 fp32 math": "nan"}')
    row = run_cell(tiny("fp32", "math"), FAST, state)

    assert row["status"] == "ok"  # it ran; its output is garbage
    assert row["nonfinite"] is True and row["fidelity_ok"] is False
    assert row["ref_rel_err"] is None and row["ref_max_abs_err"] is None
    assert any("NaN/inf" in warning for warning in row["warnings"])


def test_a_numerically_broken_attention_kernel_is_flagged(state, monkeypatch):
    forced = attention_settings.kernel_context

    @contextlib.contextmanager
    def broken_flash(attention: str):
        """The flash setting computes attention without the 1/sqrt(head_dim) scale."""
        if attention != "flash":
            with forced(attention):
                yield
            return
        original = F.scaled_dot_product_attention
        monkeypatch.setattr(F, "scaled_dot_product_attention", _unscaled(original))
        try:
            with forced(attention):
                yield
        finally:
            monkeypatch.setattr(F, "scaled_dot_product_attention", original)

    monkeypatch.setattr(attention_settings, "kernel_context", broken_flash)
    row = run_cell(tiny("fp32", "flash"), FAST, state)

    assert row["status"] == "ok" and row["nonfinite"] is False
    assert row["ref_rel_err"] > TOLERANCE_REL["fp32"] and row["fidelity_ok"] is False
    assert any("above the fp32 tolerance" in warning for warning in row["warnings"])


def _unscaled(sdpa):
    def attend(query, key, value, *args, **kwargs):
        kwargs["scale"] = 1.0
        return sdpa(query, key, value, *args, **kwargs)

    return attend


def test_the_reference_of_a_compiled_cell_runs_eagerly():
    workload = build_workload(tiny("bf16", "sdpa", stage="vae_decode"))
    workload.run = torch.compile(workload.run, backend="eager", dynamic=False)
    output = workload.call()  # compiles for bf16
    record = CompileRecord()
    figures = fidelity(workload, output, ReferenceCache())  # fp32 modules would recompile
    record.close()
    torch._dynamo.reset()

    assert record.compile_ids == []
    assert figures["fidelity_ok"] and 0 < figures["ref_rel_err"] < TOLERANCE_REL["bf16"]


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_sd15_unet_in_half_precision_passes_its_tolerance_with_room(precision):
    cell = Cell("sd15", "unet", "cpu", 128, 128, 1, precision, "flash", "none")
    workload = build_workload(cell)
    figures = fidelity(workload, workload.call(), ReferenceCache())

    assert figures["fidelity_ok"]
    assert figures["ref_rel_err"] < TOLERANCE_REL[precision] / 3
