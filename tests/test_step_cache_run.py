"""The cache axis end to end: a suite over the tiny models' pipelines, measured by the runner,
with every cached row's fidelity against the uncached pipeline from the same seed."""

from __future__ import annotations

import pytest
from conftest import run_suite_text

SUITE = """
[suite]
name = "cache-e2e"
[matrix]
model = ["tiny", "tiny-flux"]
stage = ["pipeline"]
device = ["cpu"]
resolution = [64]
batch_size = [1]
precision = ["fp32"]
cache = ["none", "deepcache:2", "fbcache:0.99"]
[options]
steps = 6
[measure]
warmup = 1
min_repeats = 3
max_repeats = 3
max_time_s = 1
cell_timeout_s = 300
"""


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    _, rows = run_suite_text(tmp_path_factory.mktemp("cache"), "cache", SUITE)
    return rows.set_index(["model", "cache"])


def test_each_model_runs_its_own_cache_and_refuses_the_other_kind(frame):
    assert frame.loc[("tiny", "deepcache:2"), "status"] == "ok"
    assert frame.loc[("tiny-flux", "fbcache:0.99"), "status"] == "ok"
    assert frame.loc[("tiny", "fbcache:0.99"), "status"] == "unsupported"
    assert frame.loc[("tiny-flux", "deepcache:2"), "status"] == "unsupported"
    assert "applies to UNet models" in frame.loc[("tiny-flux", "deepcache:2"), "error"]


def test_deepcache_on_the_tiny_unet_stays_within_its_fidelity_tolerance(frame):
    cached, plain = frame.loc[("tiny", "deepcache:2")], frame.loc[("tiny", "none")]
    assert cached["fidelity_tolerance"] == 0.25
    assert 1e-3 < cached["ref_rel_err"] <= cached["fidelity_tolerance"]
    assert bool(cached["fidelity_ok"])
    assert plain["ref_rel_err"] < 1e-5  # fp32, no cache: the reference but for its kernel
    assert cached["n_samples"] == plain["n_samples"] == 3


def test_a_threshold_that_skips_too_much_is_measured_and_fails_fidelity(frame):
    # fbcache:0.99 reuses blocks while the first block's residual changed by up to 99%: on the
    # tiny model's random weights the image drifts ~0.39 from the uncached pipeline's
    cached = frame.loc[("tiny-flux", "fbcache:0.99")]
    assert cached["ref_rel_err"] > cached["fidelity_tolerance"] == 0.25
    assert not bool(cached["fidelity_ok"])
    assert cached["median_ms"] > 0 and cached["n_samples"] == 3
