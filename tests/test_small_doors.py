"""Smaller doors: a suite without a matrix is a mistake, not a full-size default run."""

from __future__ import annotations

import pytest

from sdbench.errors import BadInput
from sdbench.suite import parse_suite


@pytest.mark.parametrize(
    "text",
    ['[suite]\nname = "x"\n', "[matrix]\n[measure]\nwarmup = 1\n", "", "[options]\ncfg = true\n"],
)
def test_a_suite_without_a_matrix_exits_2_naming_it(text):
    with pytest.raises(BadInput, match=r"s.toml: \[matrix\] is missing or empty"):
        parse_suite(text, source="s.toml")


def test_a_suite_with_a_matrix_of_one_axis_still_takes_defaults_for_the_rest():
    suite = parse_suite('[matrix]\nmodel = ["tiny"]\n', source="s.toml")
    assert suite.matrix["model"] == ("tiny",) and len(suite.matrix["stage"]) >= 1


GOOD_PROBE = {
    "device": "cpu",
    "device_name": "This CPU",
    "matmul_tflops": {"fp32": 0.5},
    "conv_tflops": {"fp32": 0.4},
    "dense_tflops": {"fp32": 0.5},
    "skipped": {},
    "bandwidth_gbs": 10.0,
}


@pytest.mark.parametrize(
    "cached",
    [
        [],
        {"device_name": "This CPU"},
        {**GOOD_PROBE, "matmul_tflops": ["fp32", 0.5]},
        {**GOOD_PROBE, "dense_tflops": {"fp32": "fast"}},
        {**GOOD_PROBE, "bandwidth_gbs": -1},
        {**GOOD_PROBE, "load_1m": "high"},
    ],
)
def test_a_probe_cache_of_the_wrong_shape_is_a_missing_cache(cached, monkeypatch):
    import json

    import torch

    from sdbench.devices import probe

    path = probe.cache_path(
        probe.device_name(torch, "cpu"), torch.__version__, torch.get_num_threads()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cached))
    monkeypatch.setattr(probe, "measure_peaks", lambda device: dict(GOOD_PROBE))
    answer = probe.load_or_probe("cpu")
    assert answer["cached"] is False and answer["matmul_tflops"] == {"fp32": 0.5}
    assert json.loads(path.read_text())["bandwidth_gbs"] == 10.0  # replaced by the new probe
    assert probe.load_or_probe("cpu")["cached"] is True


def test_a_weights_folder_of_only_pickles_exits_2_before_anything_runs(tmp_path):
    (tmp_path / "weights" / "unet").mkdir(parents=True)
    (tmp_path / "weights" / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"pickle")
    text = '[matrix]\nmodel = ["tiny"]\n[options]\nweights = "weights"\n'
    with pytest.raises(BadInput, match=r"\[options.weights\] .* holds only pickled weights"):
        parse_suite(text, source=str(tmp_path / "s.toml"))
    (tmp_path / "weights" / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"x")
    assert parse_suite(text, source=str(tmp_path / "s.toml")).options["weights"].endswith("weights")


def test_exclude_rules_match_by_set_so_many_long_rules_stay_fast():
    from sdbench.suite.expand import _as_sets, _excluded

    rules = [{"batch_size": tuple(range(1000 * i + 1, 1000 * i + 1001))} for i in range(300)]
    compiled = _as_sets(rules)
    assert len(compiled.tuples[("batch_size",)]) == 300_000 and compiled.rules == []
    assert _excluded({"batch_size": 299_500}, compiled)
    assert not _excluded({"batch_size": 300_001}, compiled)
    device_rules = _as_sets([{"device": ("rocm",)}])
    assert _excluded({"device": "cuda:1"}, device_rules)
    assert not _excluded({"device": "cpu"}, device_rules)


def test_a_worker_stopped_before_its_hello_times_out_by_the_suite_and_says_so():
    import os
    import signal
    import time

    from sdbench.cell import Measure
    from sdbench.runner.process import WorkerLost, WorkerProcess, hello_timeout_s

    assert hello_timeout_s(Measure(cell_timeout_s=5)) == 120.0  # imports need time
    assert hello_timeout_s(Measure(cell_timeout_s=300)) == 300.0
    assert hello_timeout_s(Measure(cell_timeout_s=7200)) == 600.0
    begin = time.monotonic()
    with pytest.raises(WorkerLost) as lost:
        WorkerProcess(
            "cpu", on_spawn=lambda w: os.kill(w.process.pid, signal.SIGSTOP), hello_timeout_s=2
        )
    assert time.monotonic() - begin < 30
    assert lost.value.status == "timeout" and "cell_timeout_s" in lost.value.reason
