"""One Analysis per results frame: the report renders it without computing, and fits the
performance model's calibration once, whatever the number of workloads it recommends GPUs for."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from report_fixtures import START, synthetic_rows, with_text_encoder

from sdbench.analysis import perfmodel
from sdbench.analysis.analysis import Analysis, analyse
from sdbench.machine import latest_per_series
from sdbench.report.markdown import markdown_report
from sdbench.report.sections import build_page
from sdbench.report.site import render_html, write_site
from sdbench.store import read_results, write_run

CATALOGUE_GPU = "NVIDIA GeForce RTX 4090"  # a catalogue GPU: its rows refit the calibration


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> pd.DataFrame:
    """Two runs of the same GPU cells, a day apart, the second 25% slower, as read back."""
    folder = tmp_path_factory.mktemp("results")
    for day, scale in enumerate((1.0, 1.25)):
        rows = synthetic_rows(f"run-{day}", started_at=START + timedelta(days=day), scale=scale,
                              devices=("cuda:0",))  # fmt: skip
        rows = [row | {"device_name": CATALOGUE_GPU} for row in with_text_encoder(rows)]
        write_run(rows, folder / f"run-{day}.parquet")
    return read_results([folder])


@pytest.fixture(scope="module")
def analysis(two_runs) -> Analysis:
    return analyse(two_runs)


def _refuse(*args, **kwargs):
    raise AssertionError("the report computed instead of rendering its Analysis")


def test_the_report_renders_an_analysis_without_calling_recommend_compare_or_the_fit(
    analysis, monkeypatch
):
    import sdbench.analysis.analysis as analysis_module
    import sdbench.analysis.compare as compare_module
    import sdbench.analysis.correction as correction_module
    import sdbench.analysis.recommend as recommend_module
    import sdbench.serving.capacity as capacity_module

    for module, name in [
        (recommend_module, "recommend"), (recommend_module, "candidates"),
        (compare_module, "compare_runs"), (capacity_module, "capacity"),
        (perfmodel, "calibrate"), (perfmodel, "calibration_for"),
        (correction_module, "fit_corrections"), (recommend_module, "fit_corrections"),
        (analysis_module, "analyse"), (analysis_module, "recommend"),
    ]:  # fmt: skip
        monkeypatch.setattr(module, name, _refuse)
    html = render_html(build_page(analysis, [], with_plots=False))
    markdown = markdown_report(analysis)
    assert len(analysis.recommendations) == 4  # sd15 at 256 and 512 px, batch 1 and 2
    assert all(picks.table is not None for picks in analysis.recommendations)
    assert html.count('id="recommend-') == 4
    assert "Against the previous run" in html and "### Against the previous run" in markdown
    assert analysis.history.current_run == "run-1" and analysis.history.baseline_run == "run-0"


def test_one_report_fits_the_calibration_and_the_gpu_corrections_once(
    two_runs, tmp_path, monkeypatch
):
    import sdbench.analysis.analysis as analysis_module
    import sdbench.analysis.correction as correction_module
    import sdbench.analysis.predict as predict_module
    import sdbench.analysis.recommend as recommend_module
    import sdbench.serving.capacity as capacity_module

    calibrations, corrections = [], []

    def counted(calls, real):
        def wrapper(results, *args, **kwargs):
            calls.append(None if results is None else len(results))
            return real(results, *args, **kwargs)

        return wrapper

    count_calibrations = counted(calibrations, perfmodel.calibration_for)
    count_corrections = counted(corrections, correction_module.fit_corrections)
    for module in (analysis_module, recommend_module, capacity_module, predict_module, perfmodel):
        monkeypatch.setattr(module, "calibration_for", count_calibrations, raising=False)
    for module in (analysis_module, recommend_module, capacity_module, predict_module):
        monkeypatch.setattr(module, "fit_corrections", count_corrections)
    write_site(two_runs, tmp_path)
    latest = len(latest_per_series(two_runs))
    assert calibrations == [latest]
    assert corrections == [latest]


def test_one_report_flags_outliers_once_for_best_precision_answers_and_the_list(
    two_runs, monkeypatch
):
    import sys

    from sdbench.analysis import outliers

    calls = []
    real = outliers.flag_outliers

    def counted(frame, *args, **kwargs):
        calls.append(len(frame))
        return real(frame, *args, **kwargs)

    # Every module that imported the function by name, whichever of them calls it.
    for module in [m for m in list(sys.modules.values()) if m is not None]:
        if getattr(module, "flag_outliers", None) is real:
            monkeypatch.setattr(module, "flag_outliers", counted)
    analysis = analyse(two_runs)
    assert calls == [len(latest_per_series(two_runs))]
    assert len(analysis.fastest) > 0 and len(analysis.precision_gains) > 0
    assert len(analysis.answers) > 0
