"""Telemetry warnings: throttling, low clocks, energy window too short, sensors unavailable."""

from __future__ import annotations

from sdbench.quality import telemetry_warnings

CLEAN_GPU_ROW = {
    "throttle_reasons": "",
    "sm_clock_mhz": 1900.0,
    "sm_clock_max_mhz": 1980.0,
    "telemetry_window_s": 3.0,
    "energy_min_window_s": 0.5,
    "energy_source": "counter",
    "energy_j": 900.0,
}


def test_a_steady_unthrottled_window_has_no_warnings():
    assert telemetry_warnings(CLEAN_GPU_ROW) == []
    assert telemetry_warnings({}) == []


def test_power_or_thermal_slowdown_is_named_in_the_warning():
    row = {**CLEAN_GPU_ROW, "throttle_reasons": "sw_power_cap,hw_thermal_slowdown"}
    (warning,) = telemetry_warnings(row)
    assert "sw_power_cap, hw_thermal_slowdown" in warning
    assert "cooling" in warning


def test_clock_settings_are_not_throttling():
    row = {**CLEAN_GPU_ROW, "throttle_reasons": "applications_clocks_setting,sync_boost"}
    assert telemetry_warnings(row) == []


def test_clocks_below_ninety_percent_of_max_are_flagged_with_the_figures():
    row = {**CLEAN_GPU_ROW, "sm_clock_mhz": 1700.0}
    (warning,) = telemetry_warnings(row)
    assert "1700 MHz, 86% of its 1980 MHz maximum" in warning
    assert telemetry_warnings({**CLEAN_GPU_ROW, "sm_clock_mhz": 1783.0}) == []  # 90.05%


def test_a_window_shorter_than_the_counter_needs_says_how_long_it_was():
    row = {**CLEAN_GPU_ROW, "telemetry_window_s": 0.3, "energy_j": None}
    (warning,) = telemetry_warnings(row)
    assert "0.30 s" in warning and "0.5 s" in warning and "min_repeats" in warning


def test_missing_device_sensors_are_a_warning_with_the_reason():
    (warning,) = telemetry_warnings({"telemetry_error": "NVML nvmlInit failed: Driver Not Loaded"})
    assert "Driver Not Loaded" in warning


def test_warning_lines_name_the_cell_and_cap_the_count():
    from sdbench.quality import warning_lines

    row = {
        "model": "sd15",
        "stage": "unet",
        "width": 512,
        "height": 512,
        "batch_size": 1,
        "precision": "fp16",
        "attention": "sdpa",
        "warnings": ["a", "b"],
    }
    assert warning_lines([row, {**row, "warnings": None}]) == [
        "sd15 unet 512x512 bs1 fp16 sdpa: a",
        "sd15 unet 512x512 bs1 fp16 sdpa: b",
    ]
    capped = warning_lines([{**row, "warnings": list("abcde")}], max_lines=3)
    assert len(capped) == 4 and capped[-1].startswith("... and 2 more warnings")


def test_the_same_warning_on_many_cells_is_one_line_that_counts_them():
    from sdbench.quality import warning_lines

    rows = [
        {"model": "sd15", "stage": "unet", "width": w, "height": w, "batch_size": 1,
         "precision": "bf16", "attention": "sdpa", "warnings": ["only 3 samples", f"spread {w}"]}
        for w in (256, 320, 384, 448, 512)
    ]  # fmt: skip
    lines = warning_lines(rows)
    assert lines[0] == (
        "5 cells: only 3 samples (sd15 unet 256x256 bs1 bf16 sdpa; sd15 unet 320x320 bs1 bf16 sdpa; "
        "sd15 unet 384x384 bs1 bf16 sdpa and 2 more)"
    )
    assert lines[1:] == [
        f"sd15 unet {w}x{w} bs1 bf16 sdpa: spread {w}" for w in (256, 320, 384, 448, 512)
    ]
