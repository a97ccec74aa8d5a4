def test_a_cell_faster_than_the_probed_peak_gets_no_mfu_and_a_warning_to_reprobe():
    from sdbench.cell import Cell
    from sdbench.quality import probe_warnings
    from sdbench.runner.derived import derived_figures

    class State:
        probe = {"matmul_tflops": {"fp32": 0.03}}

    cell = Cell("tiny", "unet", "cpu", 64, 64, 1, "fp32", "sdpa", "none")
    row = derived_figures(cell, 1, median_ms=1000.0, flops=int(0.2e12), state=State())
    assert row["tflops_per_s"] == 0.2 and row["mfu"] is None
    (warning,) = probe_warnings(row)
    assert "sdbench probe --refresh" in warning
    honest = derived_figures(cell, 1, median_ms=1000.0, flops=int(0.015e12), state=State())
    assert honest["mfu"] == 0.5 and probe_warnings(honest) == []


def test_spread_warning_uses_the_stored_median_and_iqr_of_an_even_sample():
    from sdbench.quality import timing_warnings
    from sdbench.stats import summarize

    # median 11 (not the upper middle 12), IQR 16.5 - 10 = 6.5: 59% of the median.
    warnings = timing_warnings(summarize([10.0, 10.0, 12.0, 30.0]), [10.0], 0.05)
    assert warnings[0].startswith("high spread: IQR is 59% of the median")
