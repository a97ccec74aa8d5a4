"""The compile axis: compile time kept apart from the samples, recompilations counted, channels_last."""

from __future__ import annotations

import pytest
import torch

from sdbench.cell import Cell, Measure
from sdbench.models.workload import build_workload
from sdbench.runner import compile as compile_axis
from sdbench.runner.compile import CompileRecord, compile_workload
from sdbench.runner.measure import new_state, run_cell

FAST = Measure(warmup=1, min_repeats=3, max_repeats=3, max_time_s=1.0)


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.parametrize(
    ("compile_id", "attempt"), [("0/0", 0), ("3/1", 1), ("3/2_1", 2), ("x", 0)]
)
def test_attempt_is_read_from_dynamo_compile_ids(compile_id, attempt):
    assert compile_axis._attempt_of(compile_id) == attempt


def test_recompiles_count_frames_compiled_again_and_warn_after_the_first_call():
    def scale(x, factor):
        return x * factor

    compiled = torch.compile(scale, backend="eager", dynamic=False)
    record = CompileRecord()
    compiled(torch.ones(2), 2)
    record.compiles_in_first_call = len(record.compile_ids)
    compiled(torch.ones(2), 2)  # same guards: no compilation
    assert record.recompiles == 0 and record.warnings() == []
    compiled(torch.ones(2), 3)  # a new Python int: a guard fails, Dynamo recompiles
    record.close()
    compiled(torch.ones(2), 4)  # closed: no longer counted

    assert record.compile_ids == ["0/0", "0/1"]
    assert record.recompiles == 1
    assert record.compiles_after_first_call == 1
    assert "compiled 1 more time(s) after the first call" in record.warnings()[0]


def test_compile_time_is_the_first_calls_excess_over_a_steady_call(monkeypatch):
    eager_compile = torch.compile

    def compile_eagerly(fn, **kwargs):  # inductor codegen takes minutes on a busy CPU
        return eager_compile(fn, backend="eager", dynamic=kwargs["dynamic"])

    monkeypatch.setattr(compile_axis.torch, "compile", compile_eagerly)
    cell = Cell("tiny", "vae_decode", "cpu", 64, 64, 1, "fp32", "sdpa", "default")
    workload = build_workload(cell)
    eager_run = workload.run
    timed: list[str] = []

    def fake_timer(fn) -> float:
        fn()
        timed.append("call")
        return 2500.0

    record = compile_workload(workload, fake_timer)
    columns = record.columns(median_ms=500.0)
    record.close()

    assert workload.run is not eager_run and timed == ["call"]
    assert record.compiles_in_first_call >= 1 and record.recompiles == 0
    assert columns == {"compile_s": 2.0, "recompiles": 0, "first_call_ms": 2500.0}


def test_channels_last_cells_run_the_unet_in_channels_last_with_the_same_result():
    cell = Cell("tiny", "unet", "cpu", 64, 64, 1, "fp32", "sdpa", "none", channels_last=True)
    row = run_cell(cell, FAST, new_state("cpu"))
    weight = build_workload(cell).modules["unet"].conv_in.weight

    assert row["status"] == "ok", row["error"]
    assert weight.is_contiguous(memory_format=torch.channels_last)
    assert row["fidelity_ok"] and row["ref_rel_err"] < 1e-5


@pytest.mark.slow
def test_default_compile_of_the_tiny_unet_records_compile_time_and_no_recompiles():
    cell = Cell("tiny", "unet", "cpu", 64, 64, 1, "fp32", "sdpa", "default")
    row = run_cell(cell, FAST, new_state("cpu"))

    assert row["status"] == "ok", row["error"]
    assert row["compile_s"] > 0 and row["first_call_ms"] > row["median_ms"]
    assert row["recompiles"] == 0 and row["n_samples"] == 3
    assert row["fidelity_ok"] and row["ref_rel_err"] < 1e-4  # inductor vs eager math, fp32
