"""A run's expected duration: per-cell cost from FLOPs and the device's peak, and an ETA weighted by it."""

from __future__ import annotations

import json

import pytest

from sdbench.cell import Cell, Measure
from sdbench.devices.probe import PROBE_VERSION
from sdbench.runner.estimate import (
    WORKER_START_S,
    DevicePeak,
    EtaClock,
    assumed_cpu_tflops,
    call_seconds,
    device_peak,
    estimate_cells,
    timed_calls,
)
from sdbench.suite import expand, load_suite

CPU = DevicePeak("cpu", "Test CPU", {"fp32": 0.5, "bf16": 1.0}, "probe")


def _cell(stage: str = "unet", size: int = 256, precision: str = "fp32", **kw) -> Cell:
    return Cell("sd15", stage, "cpu", size, size, 1, precision, "sdpa", "none", **kw)


def test_a_call_costs_its_flops_over_the_peak():
    # sd15 UNet, 256 px, cfg: 3.602e11 FLOPs (sdbench/data/flops.csv); 47% of 0.5 TFLOP/s.
    assert call_seconds(_cell(), CPU) == pytest.approx(0.005 + 3.602e11 / (0.47 * 0.5e12), rel=1e-3)
    assert call_seconds(_cell(precision="bf16"), CPU) == pytest.approx(
        0.005 + 3.602e11 / (0.47 * 1.0e12), rel=1e-3
    )


def test_a_larger_image_costs_what_its_flops_say():
    ratio = call_seconds(_cell(size=512), CPU) / call_seconds(_cell(size=256), CPU)
    assert ratio == pytest.approx(1.6065e12 / 3.602e11, rel=0.01)


def test_a_pipeline_call_costs_its_steps_of_unet():
    pipeline = call_seconds(_cell(stage="pipeline", steps=20), CPU)
    parts = [call_seconds(_cell(stage=s), CPU) - 0.005 for s in ("text_encoder", "vae_decode")]
    unet = call_seconds(_cell(), CPU) - 0.005
    assert pipeline == pytest.approx(0.005 + sum(parts) + 20 * unet, rel=1e-6)


def test_timed_calls_follow_the_measure_rules():
    measure = Measure(warmup=1, min_repeats=6, max_repeats=20, max_time_s=2.0)
    assert timed_calls(5.0, measure) == 6  # slow calls: min_repeats
    assert timed_calls(0.25, measure) == 8  # the time budget
    assert timed_calls(0.001, measure) == 20  # fast calls: max_repeats


def test_start_up_and_reference_are_charged_once_per_worker_and_shape():
    measure = Measure(warmup=1, min_repeats=6, max_repeats=6, max_time_s=1.0)
    first, second = _cell(), _cell(steps=21)  # one worker, one shape
    expected = estimate_cells([first, second], measure, {"cpu": CPU})
    call = call_seconds(first, CPU)
    reference = call * 1.15
    assert expected[first.cell_id] == pytest.approx(8 * call + reference + WORKER_START_S)
    assert expected[second.cell_id] == pytest.approx(8 * call)


DEV_VM = DevicePeak("cpu", "AMD EPYC", {"fp32": 0.483, "bf16": 0.973, "fp16": 0.002}, "probe")


def test_the_estimate_agrees_with_the_quick_matrix_run_measured_on_the_dev_vm():
    # The quiet 2-core AVX-512-BF16 VM (probe above) ran the 40-cell matrix, then with 3 samples
    # per cell, in 8 minutes for `make bench` and 771.6 s in benchmarks/run_efficiency.py.
    suite = load_suite("quick-matrix")
    then = Measure(warmup=1, min_repeats=3, max_repeats=10, max_time_s=4, target_rel_ci=0.05)
    total = sum(estimate_cells(expand(suite, ["cpu"]), then, {"cpu": DEV_VM}).values())
    assert 400 < total < 800


def test_the_quick_suite_meets_the_sample_rule_in_minutes():
    suite = load_suite("quick")
    assert suite.measure.min_repeats >= 6  # a median's 95% CI needs 6 samples (stats.median_ci95)
    total = sum(estimate_cells(expand(suite, ["cpu"]), suite.measure, {"cpu": DEV_VM}).values())
    assert total < 120
    avx2 = DevicePeak("cpu", "AMD EPYC", assumed_cpu_tflops({"avx2"}, 2), "assumed")
    total = sum(estimate_cells(expand(suite, ["cpu"]), suite.measure, {"cpu": avx2}).values())
    assert total < 240  # an AVX2-only 2-core VM, bf16 without native support


def test_a_cached_probe_sets_the_peak_unless_it_was_taken_on_a_busy_machine(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = tmp_path / "sdbench"
    folder.mkdir()
    probe = {
        "device_name": "Test CPU",
        "dense_tflops": {"fp32": 0.4},
        "probe_version": PROBE_VERSION,
        "probed_at": "2026-12-01T10:00:00+00:00",
        "load_1m": 0.5,
        "logical_cpus": 2,
    }
    (folder / "probe-Test-CPU-a.json").write_text(json.dumps(probe))
    assert device_peak("cpu", "Test CPU").tflops == {"fp32": 0.4}
    assert device_peak("cpu", "Test CPU").source == "probe"
    (folder / "probe-Test-CPU-a.json").write_text(json.dumps(probe | {"load_1m": 9.6}))
    assert device_peak("cpu", "Test CPU").source == "assumed"


def test_without_native_bf16_a_cpu_is_assumed_slower_in_bf16():
    avx512_bf16 = assumed_cpu_tflops({"avx2", "avx512f", "avx512_bf16"}, 2)
    avx2 = assumed_cpu_tflops({"avx2", "fma"}, 2)
    assert avx512_bf16["bf16"] == pytest.approx(2 * avx512_bf16["fp32"])
    assert avx2["bf16"] < avx2["fp32"] < avx512_bf16["fp32"]


def test_eta_is_weighted_by_cost_not_by_cell_count():
    clock = EtaClock({"a": 10.0, "b": 10.0, "c": 100.0}, dict.fromkeys("abc", "cpu"))
    clock.finish("a", 10.0)
    clock.finish("b", 20.0)
    # Two of three cells done, but 100 of the 120 expected seconds are still to come.
    assert clock.remaining_s(20.0) == pytest.approx(100.0)
    assert clock.fraction_done == pytest.approx(20 / 120)


def test_eta_is_refined_by_how_the_finished_cells_went():
    clock = EtaClock({"a": 10.0, "b": 30.0}, dict.fromkeys("ab", "cpu"))
    clock.finish("a", 20.0)  # twice as slow as expected: so will b be
    assert clock.remaining_s(20.0) == pytest.approx(60.0)
    assert clock.remaining_s(50.0) == pytest.approx(30.0)  # counts down while b runs


def test_eta_of_devices_side_by_side_is_the_slowest_lane():
    clock = EtaClock(
        {"g1": 5.0, "g2": 5.0, "c1": 50.0}, {"g1": "cuda:0", "g2": "cuda:0", "c1": "cpu"}
    )
    clock.finish("g1", 5.0)
    assert clock.remaining_s(5.0) == pytest.approx(45.0)


def test_cells_no_worker_ran_leave_the_eta_without_scaling_it():
    clock = EtaClock({"u1": 10.0, "u2": 10.0, "a": 10.0, "b": 10.0}, dict.fromkeys(["u1", "u2", "a", "b"], "cpu"))  # fmt: skip
    # 60 s of start-up and capability check, then two cells settled without a worker
    clock.finish("u1", 60.0, ran=False)
    clock.finish("u2", 60.0, ran=False)
    assert clock.remaining_s(60.0) == pytest.approx(20.0)  # not 20 s x (60 / 20) = 60 s
    assert clock.fraction_done == pytest.approx(0.5)
    clock.finish("a", 80.0)  # the first measured cell took 20 s from there: twice its 10 s
    assert clock.remaining_s(80.0) == pytest.approx(20.0)  # so b will (not 8x, from 0 s)


def test_resumed_cells_do_not_count_as_progress_of_this_session():
    clock = EtaClock({"a": 10.0, "b": 10.0}, dict.fromkeys("ab", "cpu"), done={"a"})
    assert clock.remaining_s(0.0) == pytest.approx(10.0)
    assert clock.fraction_done == pytest.approx(0.5)


def test_durations_read_as_a_person_would_say_them():
    from sdbench.units import duration_text

    assert duration_text(0.647) == "647 ms"
    assert duration_text(35.2) == "35.2 s"
    assert duration_text(250) == "4 min 10 s"
    assert duration_text(3900) == "1 h 05 min"


def test_progress_lines_give_the_cost_weighted_eta(monkeypatch, capsys):
    import io
    import types

    from rich.console import Console

    from sdbench.runner import progress as progress_module

    now = [100.0]
    monkeypatch.setattr(progress_module, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    clock = EtaClock({"a": 10.0, "b": 100.0}, {"a": "cpu", "b": "cpu"})
    console = Console(file=io.StringIO(), force_terminal=False)
    with progress_module.RunProgress(clock, total=2, console=console) as progress:
        now[0] = 120.0  # the 10 s cell took 20 s: the 100 s one should take 200 s
        progress.finished("a", "sd15 unet", "ok", 5.0)
    line = capsys.readouterr().err.strip()
    assert line.startswith("[1/2 20s, ETA 3 min 20 s] ok")


def test_the_quick_suite_does_not_warn_about_an_ordinary_six_sample_cpu_cell():
    from sdbench.quality import timing_warnings
    from sdbench.stats import summarize

    measure = load_suite("quick").measure
    # A 256 px UNet step on a 2-core CPU: 6 samples within -7%/+8% of the median (ordinary).
    samples = [4420.0 * f for f in (0.93, 0.97, 1.0, 1.0, 1.03, 1.08)]
    warnings = timing_warnings(summarize(samples), [4500.0], measure.target_rel_ci)
    assert warnings == []
    # A cell that really is noisy still says so.
    noisy = [4420.0 * f for f in (0.7, 0.9, 1.0, 1.0, 1.1, 1.4)]
    assert "median known to" in " ".join(
        timing_warnings(summarize(noisy), [], measure.target_rel_ci)
    )


def test_the_quick_suite_takes_more_samples_of_its_cheap_cells():
    measure = load_suite("quick").measure
    assert timed_calls(0.34, measure) >= 17  # the CPU text encoder: an order-statistic CI
    assert timed_calls(4.42, measure) == measure.min_repeats == 6  # the UNet step: as before


def _two_cell_progress(monkeypatch):
    """A plain (non-terminal) progress of two 10 s cpu cells, and the clock's hand to move."""
    import io
    import types

    from rich.console import Console

    from sdbench.runner import progress as progress_module

    now = [100.0]
    monkeypatch.setattr(progress_module, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    clock = EtaClock({"a": 10.0, "b": 10.0}, {"a": "cpu", "b": "cpu"})
    console = Console(file=io.StringIO(), force_terminal=False)
    return progress_module.RunProgress(clock, total=2, console=console), now


def test_the_last_progress_line_gives_no_eta(monkeypatch, capsys):
    progress, now = _two_cell_progress(monkeypatch)
    now[0] += 10.0
    progress.finished("a", "cell a", "ok", 5.0)
    now[0] += 10.0
    progress.finished("b", "cell b", "ok", 5.0)
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith("[1/2 10s, ETA 10.0 s] ok")
    assert lines[1].startswith("[2/2 20s] ok")
    assert progress.eta_text() == "done"


def test_a_cell_past_its_estimate_gives_overdue_not_an_eta_of_zero(monkeypatch):
    progress, now = _two_cell_progress(monkeypatch)
    now[0] += 10.0
    progress.finished("a", "cell a", "ok", 5.0)
    now[0] += 9.5
    assert progress.eta_text() == "ETA 500 ms"  # a short estimate is still an estimate
    now[0] += 40.0  # cell b has run ~50 s against its expected 10 s
    assert progress.eta_text() == "ETA overdue"
