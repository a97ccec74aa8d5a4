"""Quality warnings attached to a measured cell: each names the cause and what to do about it.

Pure functions over a row's figures (no torch), so the run summary, compare and the report all
show the same warnings.
"""

from __future__ import annotations

from collections.abc import Sequence

from sdbench.stats import CI_MIN_SAMPLES, Summary


def timing_warnings(
    summary: Summary, warmup_ms: Sequence[float], target_rel_ci: float
) -> list[str]:
    """Spread, cold-start and precision warnings of one cell's timed samples."""
    warnings: list[str] = []
    median, n = summary.median_ms, len(summary.samples_ms)
    if median > 0 and summary.iqr_ms / median > 0.10:
        warnings.append(
            f"high spread: IQR is {100 * summary.iqr_ms / median:.0f}% of the median; close other "
            "programs, lock clocks, or raise min_repeats"
        )
    first = warmup_ms[0] if warmup_ms else summary.samples_ms[0]
    if median > 0 and not warmup_ms and first > 1.5 * median:
        warnings.append(
            f"first call {first / median:.1f}x slower than the median and no warm-up ran; set [measure] warmup >= 1"
        )
    elif median > 0 and len(warmup_ms) >= 2 and warmup_ms[-1] > 1.5 * median:
        warnings.append(
            f"last warm-up call was {warmup_ms[-1] / median:.1f}x the median: not yet warm; raise [measure] warmup"
        )
    if n >= CI_MIN_SAMPLES and summary.rel_ci_half_width > target_rel_ci:
        warnings.append(
            f"median known to ±{100 * summary.rel_ci_half_width:.1f}% (target {100 * target_rel_ci:.1f}%): "
            "raise max_time_s or max_repeats for a tighter figure"
        )
    if n < CI_MIN_SAMPLES:
        warnings.append(
            f"only {n} samples: the 95% CI is the sample range; raise min_repeats to "
            f"{CI_MIN_SAMPLES} or more"
        )
    return warnings


# Clock-event reasons that mean the card slowed itself down (power, heat, hardware protection);
# application and display clock settings or sync boost are configuration, not throttling.
THROTTLING_REASONS = (
    "sw_power_cap",
    "hw_slowdown",
    "sw_thermal_slowdown",
    "hw_thermal_slowdown",
    "hw_power_brake_slowdown",
)
CLOCK_FLOOR_FRACTION = 0.90


def telemetry_warnings(row: dict) -> list[str]:
    """Warnings from a row's telemetry columns: throttling, low clocks, energy window too short."""
    warnings: list[str] = []
    seen = [r for r in (row.get("throttle_reasons") or "").split(",") if r in THROTTLING_REASONS]
    if seen:
        warnings.append(
            f"clocks were held back during the timed repeats ({', '.join(seen)}): figures are those "
            "of a throttled card; improve cooling or airflow, check the power limit "
            "(nvidia-smi -q -d PERFORMANCE), or lock clocks for repeatable numbers"
        )
    clock_mhz, max_mhz = row.get("sm_clock_mhz"), row.get("sm_clock_max_mhz")
    if clock_mhz and max_mhz and clock_mhz < CLOCK_FLOOR_FRACTION * max_mhz:
        warnings.append(
            f"GPU clock averaged {clock_mhz:.0f} MHz, {100 * clock_mhz / max_mhz:.0f}% of its "
            f"{max_mhz:.0f} MHz maximum: the card was power- or heat-limited or not fully busy; "
            "raise warmup so it reaches steady clocks, or check cooling and the power limit"
        )
    window_s, min_window_s = row.get("telemetry_window_s"), row.get("energy_min_window_s")
    if window_s is not None and min_window_s and window_s < min_window_s:
        warnings.append(
            f"energy not recorded: the timed repeats lasted {window_s:.2f} s, shorter than the "
            f"{min_window_s:.1f} s the {row.get('energy_source') or 'energy'} reading needs to be "
            "trusted; raise [measure] min_repeats (or max_time_s) so the repeats last longer"
        )
    if row.get("telemetry_error"):
        warnings.append(f"no device power, clock or temperature readings: {row['telemetry_error']}")
    return warnings


def warning_lines(rows: Sequence[dict], max_lines: int = 30, cells_named: int = 3) -> list[str]:
    """One line per distinct warning of a run, for the end-of-run summary.

    A warning met on one cell is prefixed with that cell; the same words on many cells (the
    quick suite's "only 3 samples" on nearly every cell) become one line that counts them and
    names the first few. Warnings that carry a cell's own figures differ, so they stay per cell.
    """
    cells_by_warning: dict[str, list[str]] = {}
    for row in rows:
        label = (
            f"{row.get('model')} {row.get('stage')} {row.get('width')}x{row.get('height')} "
            f"bs{row.get('batch_size')} {row.get('precision')} {row.get('attention')}"
        )
        for warning in row.get("warnings") or []:
            cells_by_warning.setdefault(warning, []).append(label)
    lines = []
    for warning, labels in cells_by_warning.items():
        if len(labels) == 1:
            lines.append(f"{labels[0]}: {warning}")
            continue
        named = "; ".join(labels[:cells_named])
        more = f" and {len(labels) - cells_named} more" if len(labels) > cells_named else ""
        lines.append(f"{len(labels)} cells: {warning} ({named}{more})")
    if len(lines) > max_lines:
        hidden = len(lines) - max_lines
        lines = lines[:max_lines] + [
            f"... and {hidden} more warnings (column `warnings` of the results file)"
        ]
    return lines


def probe_warnings(row: dict) -> list[str]:
    """A cell that beat the probed peak shows the probe, not the cell, is wrong."""
    achieved, peak = row.get("tflops_per_s"), row.get("peak_tflops")
    if achieved and peak and row.get("mfu") is None and achieved > peak:
        return [
            f"achieved {achieved:.3g} TFLOP/s exceeds the probed peak {peak:.3g}: the device probe "
            "was taken on a busy machine, so MFU is left out; re-probe with `sdbench probe --refresh`"
        ]
    return []
