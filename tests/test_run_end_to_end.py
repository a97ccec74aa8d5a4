"""A whole run of the tiny model: cells measured in worker processes, rows in one Parquet file."""

from __future__ import annotations

import json

import pytest
from conftest import run_suite_text

from sdbench.machine import machine_id
from sdbench.store import COLUMNS, SCHEMA_VERSION

SUITE = """
[suite]
name = "e2e"
[matrix]
model = ["tiny"]
stage = ["unet", "vae_decode", "text_encoder"]
device = ["cpu"]
resolution = [64]
batch_size = [1, 2]
precision = ["fp32"]
attention = ["sdpa", "efficient"]
[options]
steps = 2
[measure]
warmup = 1
min_repeats = 3
max_repeats = 4
max_time_s = 1
cell_timeout_s = 120
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    # One injected out-of-memory error: the run must record it and carry on.
    mp.setenv("SDBENCH_INJECT", json.dumps({"tiny vae_decode 64x64 bs1 fp32 sdpa": "oom"}))
    try:
        return run_suite_text(tmp_path_factory.mktemp("e2e"), "e2e", SUITE)
    finally:
        mp.undo()


def test_every_cell_becomes_exactly_one_row(run):
    outcome, frame = run
    assert len(frame) == 12
    assert frame["cell_id"].is_unique
    assert outcome.path.exists() and outcome.path.suffix == ".parquet"
    assert set(COLUMNS) <= set(frame.columns)


def test_ok_rows_carry_real_samples_flops_and_memory(run):
    _, frame = run
    ok = frame[frame.status == "ok"]
    assert len(ok) == 4  # 6 sdpa cells; both VAE batches are out of memory (one skipped)
    for _, row in ok.iterrows():
        assert len(row.samples_ms) == row.n_samples >= 3
        assert all(s > 0 for s in row.samples_ms)
        assert row.ci95_low_ms <= row.median_ms <= row.ci95_high_ms
        assert row.flops > 0
        assert row.tflops_per_s == pytest.approx(row.flops / row.median_ms / 1e9)
        assert row.peak_rss_bytes > 10 * 2**20
    unet = ok[ok.stage == "unet"].iloc[0]
    assert unet.it_per_s == pytest.approx(1000.0 / unet.median_ms)


def test_oom_is_a_row_and_the_run_goes_on(run):
    _, frame = run
    oom = frame[frame.status == "oom"]
    assert len(oom) == 2  # the injected one, and batch 2 of the same shape skipped after it
    assert "out of memory" in oom[oom.batch_size == 1].error.iloc[0]
    assert "smaller batch already out of memory" in oom[oom.batch_size == 2].error.iloc[0]


def test_cuda_only_kernels_are_unsupported_rows_with_a_reason(run):
    _, frame = run
    unsupported = frame[frame.attention == "efficient"]
    assert (unsupported.status == "unsupported").all()
    assert unsupported.error.str.contains("CUDA").all()
    assert unsupported.median_ms.isna().all()  # null means not measured, never zero


def test_rows_record_the_environment(run):
    _, frame = run
    row = frame.iloc[0]
    assert row.torch and row.diffusers and row.python and row.host
    assert row.device_name and row.cpu_model
    assert row.schema_version == SCHEMA_VERSION
    assert row.machine_id == machine_id(row) and row.machine.endswith(row.host.split(".")[0])
    assert frame.run_id.nunique() == 1 and frame.suite.iloc[0] == "e2e"


def test_every_column_a_worker_writes_is_in_the_schema(run):
    _, frame = run
    assert sorted(set(frame.columns) - set(COLUMNS)) == []
