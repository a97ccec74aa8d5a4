"""One measuring path: the worker and the pytest plugin measure a cell with the same `measure_cell`,
and differ only in the sampler that times the repeats."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sdbench.cell import Cell, Measure
from sdbench.pytest_plugin import benchmark_samples_ms, pedantic_sampler
from sdbench.runner.measure import measure_cell, new_state
from sdbench.runner.measurement import Measurement
from sdbench.runner.timing import time_calls
from sdbench.stats import summarize

CELL = Cell("tiny", "unet", "cpu", 64, 64, 1, "fp32", "sdpa", "none", steps=2)
# An even sample count: the median is the mean of the middle two, not the upper one.
SIX = Measure(warmup=1, min_repeats=6, max_repeats=6, max_time_s=30.0, target_rel_ci=0.0)


@pytest.mark.serial  # pytest-benchmark keeps no samples inside an xdist worker
def test_worker_and_plugin_write_the_same_columns_with_the_same_median(benchmark):
    if benchmark.disabled:
        pytest.skip("--benchmark-disable keeps no samples")
    state = new_state("cpu")
    worker = measure_cell(CELL, SIX, state, time_calls)
    plugin = measure_cell(CELL, SIX, state, pedantic_sampler(benchmark))

    assert worker.status == plugin.status == "ok", (worker.error, plugin.error)
    assert sorted(worker.columns()) == sorted(plugin.columns())
    assert list(plugin.summary.samples_ms) == pytest.approx(benchmark_samples_ms(benchmark))
    for measured in (worker, plugin):
        columns = measured.columns()
        samples = columns["samples_ms"]
        assert len(samples) == 6 and measured.summary == summarize(samples)
        assert columns["median_ms"] == pytest.approx(float(np.median(samples)))
        assert columns["it_per_s"] == pytest.approx(1000.0 / columns["median_ms"])
        assert columns["warmup"] == 1 and columns["first_call_ms"] == measured.warmup_ms[0]
        assert columns["flops"] > 0 and columns["peak_rss_bytes"] > 0


def test_a_measurement_is_frozen_and_its_outcome_checked():
    measured = Measurement("oom", "CUDA out of memory", memory={"peak_rss_bytes": 1})
    with pytest.raises(dataclasses.FrozenInstanceError):
        measured.status = "ok"  # type: ignore[misc]
    with pytest.raises(TypeError):
        measured.memory["peak_rss_bytes"] = 2  # type: ignore[index]
    assert measured.columns() == {
        "status": "oom",
        "error": "CUDA out of memory",
        "peak_rss_bytes": 1,
    }
    with pytest.raises(ValueError, match="unknown outcome"):
        Measurement("crashed")
