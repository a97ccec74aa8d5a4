"""Per-GPU corrections of the performance model, fitted on the user's own measured rows.

The model has no per-GPU parameter (it predicts GPUs it never saw from their datasheets), so a
card that runs slower or faster than its datasheet says (clocks, cooling, power limit, driver)
keeps that bias in every prediction. Measured rows on the card show the bias: each measured cell
gives measured / predicted seconds. The correction of a GPU is the median of their logarithms,
shrunk towards 0 (no correction) by the number of cells, and the prediction for a workload not
measured there is multiplied by exp of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sdbench.analysis.perfmodel import (
    Calibration,
    Features,
    calibration_for,
    predict_metric,
    reference_calibration,
)
from sdbench.analysis.workload import ImageWorkload
from sdbench.gpus import catalogue_gpu, catalogue_name
from sdbench.machine import latest_per_series
from sdbench.models.registry import MODELS, canonical_name
from sdbench.stats import summarize
from sdbench.store.schema import plain_levers

# Empirical-Bayes shrinkage: a GPU's log correction is weighted n / (n + SHRINKAGE_CELLS), n its
# measured cells. With one-way random effects on log(measured / predicted seconds), the posterior
# mean of a GPU's bias weights its cells' mean by n / (n + sigma^2 / tau^2): sigma^2 the variance
# of cells around their GPU's own bias, tau^2 the variance of the biases across GPUs. In the
# shipped leave-one-GPU-out cross-validation (123 published rows on 29 GPUs) the two are about
# equal (sigma^2 0.038, tau^2 0.037; `shrinkage_cells(cross_validate())` gives 1.02), so one
# measured cell takes half of its measured bias and nine take 90%.
SHRINKAGE_CELLS = 1.0


CELL_COLUMNS = [
    "machine_id", "machine", "cell_id", "run_id", "started_at", "status", "stage", "model", "height",
    "width", "batch_size", "precision", "steps", "attention", "compile", "cfg", "device",
    "device_name", "it_per_s", "median_ms",
]  # fmt: skip


@dataclass(frozen=True)
class GpuCorrection:
    """How one catalogue GPU's measured cells differ from the model, and the factor applied."""

    gpu: str
    cells: int
    measured_over_predicted: float  # exp(median log ratio of seconds) over its cells, unshrunk
    factor: float  # the shrunk ratio that multiplies predicted seconds

    @property
    def source(self) -> str:
        """What `predict` says the figure rests on: "calibrated on 3 measured cells"."""
        return f"calibrated on {self.cells} measured cell{'' if self.cells == 1 else 's'}"


def shrunk_factor(log_ratios: np.ndarray | list[float]) -> float:
    """exp(median log ratio x n / (n + SHRINKAGE_CELLS)): 1 with no cells, the median with many."""
    count = len(log_ratios)
    if not count:
        return 1.0
    # Summary is written for milliseconds, but its median is the project's one median.
    center = summarize(list(log_ratios)).median_ms
    return math.exp(center * count / (count + SHRINKAGE_CELLS))


def shrinkage_cells(cv: pd.DataFrame) -> float:
    """sigma^2 / tau^2 of the log errors in a cross-validation (validate.cross_validate's rows),
    by the method of moments of one-way random effects: what SHRINKAGE_CELLS is set from."""
    log_error = np.log(cv["measured_s_per_image_step"] / cv["predicted_s_per_image_step"])
    by_gpu = log_error.groupby(cv["gpu"])
    sizes, total, gpus = by_gpu.size(), len(log_error), by_gpu.ngroups
    within = float(((log_error - by_gpu.transform("mean")) ** 2).sum()) / (total - gpus)
    between = float((sizes * (by_gpu.mean() - log_error.mean()) ** 2).sum()) / (gpus - 1)
    typical_size = (total - float((sizes**2).sum()) / total) / (gpus - 1)
    return within / ((between - within) / typical_size)


def measured_cells(results: pd.DataFrame | None) -> pd.DataFrame:
    """The rows a correction rests on: per series (a cell on one machine) its latest ok unet or
    pipeline row with a timing, on a catalogue GPU, of a full-size model with no lever on;
    `catalogue_gpu` names the GPU.

    A lever's rows (offload, quantisation, step cache) are slower or faster for reasons of the
    lever, not of the card, so they would bias the card's correction.
    """
    if results is None or results.empty:
        return pd.DataFrame(columns=[*CELL_COLUMNS, "catalogue_gpu"])
    latest = latest_per_series(results)
    timed = ((latest["stage"] == "unet") & (latest["it_per_s"] > 0)) | (
        (latest["stage"] == "pipeline") & (latest["median_ms"] > 0)
    )
    keep = [c for c in CELL_COLUMNS if c in latest.columns]  # not the samples: cells are copied
    rows = latest.loc[
        (latest["status"] == "ok")
        & timed
        & plain_levers(latest)
        & ~latest["device"].astype(str).str.startswith("cpu"),
        keep,
    ].copy()
    rows["catalogue_gpu"] = rows["device_name"].map(lambda name: catalogue_name(str(name)))
    # bool, not map's inferred dtype: on no rows that is str, and bool & str is deprecated.
    tells = rows["model"].map(_tells_about_the_card).astype(bool)
    usable = rows["catalogue_gpu"].notna() & tells
    return rows[usable].reset_index(drop=True)


def _tells_about_the_card(model: object) -> bool:
    """A registered model that is not a test config: the tiny ones (a few thousand parameters,
    run by the tests and scripts/gpu-check) time kernel launches, not the card."""
    name = canonical_name(str(model))
    return name in MODELS and not MODELS[name].family.startswith("tiny")


def predicted_seconds(cells: pd.DataFrame, calibration: Calibration) -> np.ndarray:
    """The model's seconds for each cell's own timing: one UNet step, or one pipeline call."""
    if cells.empty:
        return np.array([])
    records = cells.to_dict("records")
    metrics = ["it_per_s" if r["stage"] == "unet" else "s_per_call" for r in records]
    features = Features.build(
        [
            (catalogue_gpu(str(r["device_name"])), ImageWorkload.of_row(r), metric)
            for r, metric in zip(records, metrics, strict=True)
        ]
    )
    values = predict_metric(features, calibration)
    return np.where(np.array(metrics) == "it_per_s", 1.0 / values, values)


def measured_seconds(cells: pd.DataFrame) -> np.ndarray:
    """Each cell's measured seconds of one UNet step (unet rows) or one pipeline call."""
    unet = (cells["stage"] == "unet").to_numpy()
    return np.where(
        unet,
        1.0 / cells["it_per_s"].where(unet, 1.0).astype(float).to_numpy(),
        cells["median_ms"].astype(float).to_numpy() / 1000.0,
    )


def fit_corrections(
    results: pd.DataFrame | None, calibration: Calibration
) -> dict[str, GpuCorrection]:
    """Per catalogue GPU name with measured cells, its correction against `calibration`.

    Fit once and pass the answer to every `predict` of one question (recommend, capacity).
    """
    cells = measured_cells(results)
    if cells.empty:
        return {}
    log_ratios = np.log(measured_seconds(cells) / predicted_seconds(cells, calibration))
    corrections = {}
    for gpu, positions in cells.groupby("catalogue_gpu").indices.items():
        ratios = log_ratios[positions]
        corrections[str(gpu)] = GpuCorrection(
            gpu=str(gpu),
            cells=len(ratios),
            measured_over_predicted=math.exp(summarize(list(ratios)).median_ms),
            factor=shrunk_factor(ratios),
        )
    return corrections


LEAVE_ONE_OUT_COLUMNS = [
    "gpu", "machine", "model", "stage", "height", "width", "batch_size", "precision", "steps",
    "measured_s", "predicted_s", "corrected_s", "correction_factor", "other_cells",
    "abs_pct_error", "corrected_abs_pct_error",
]  # fmt: skip


def leave_one_out(results: pd.DataFrame | None) -> pd.DataFrame:
    """Each measured cell predicted as `predict` would had it not been measured: the model
    calibrated without it, alone and times its GPU's correction fitted on the GPU's other cells.

    `measured_s` and the predictions are seconds of one UNet step (unet rows) or one call.
    """
    cells = measured_cells(results)
    measured = measured_seconds(cells)
    reference = reference_calibration()
    # Only rows of families the reference data lacks enter the calibration (calibration_for);
    # without them every held-out cell is predicted by the reference model, computed once.
    refit = any(
        catalogue_gpu(name).family not in reference.families for name in cells["device_name"]
    )
    predicted = None if refit else predicted_seconds(cells, reference)
    rows = []
    for position in range(len(cells)):
        others = np.arange(len(cells)) != position
        if refit:
            predicted = predicted_seconds(cells, calibration_for(cells[others]))
        same_gpu = (
            others & (cells["catalogue_gpu"] == cells["catalogue_gpu"].iloc[position]).to_numpy()
        )
        factor = shrunk_factor(np.log(measured[same_gpu] / predicted[same_gpu]))
        rows.append(
            _held_out_row(
                cells.iloc[position],
                measured[position],
                predicted[position],
                factor,
                int(same_gpu.sum()),
            )
        )
    return pd.DataFrame(rows, columns=LEAVE_ONE_OUT_COLUMNS)


def _held_out_row(
    cell: pd.Series, measured: float, predicted: float, factor: float, others: int
) -> dict:
    return {
        "gpu": cell["catalogue_gpu"], "machine": cell.get("machine"), "model": cell["model"], "stage": cell["stage"],
        "height": cell["height"], "width": cell["width"], "batch_size": cell["batch_size"],
        "precision": cell["precision"], "steps": cell.get("steps"),
        "measured_s": measured, "predicted_s": predicted, "corrected_s": predicted * factor,
        "correction_factor": factor, "other_cells": others,
        "abs_pct_error": abs(predicted / measured - 1) * 100,
        "corrected_abs_pct_error": abs(predicted * factor / measured - 1) * 100,
    }  # fmt: skip


@dataclass(frozen=True)
class MeasuredError:
    """How well one GPU's measured cells (or all of them, gpu "all") were predicted, left out."""

    gpu: str
    cells: int
    median_abs_pct_error: float  # the model alone
    corrected_median_abs_pct_error: float  # times the correction fitted on the GPU's other cells
    measured_over_predicted: float  # median ratio of seconds: > 1 the GPU runs slower than modelled


def summarise_leave_one_out(loo: pd.DataFrame) -> list[MeasuredError]:
    """Per GPU, then over every cell ("all"): median absolute % error without and with correction."""
    groups = [(str(gpu), group) for gpu, group in loo.groupby("gpu", sort=True)]
    if len(groups) > 1:
        groups.append(("all", loo))
    return [
        MeasuredError(
            gpu=gpu,
            cells=len(group),
            median_abs_pct_error=summarize(list(group["abs_pct_error"])).median_ms,
            corrected_median_abs_pct_error=summarize(
                list(group["corrected_abs_pct_error"])
            ).median_ms,
            measured_over_predicted=summarize(
                list(group["measured_s"] / group["predicted_s"])
            ).median_ms,
        )
        for gpu, group in groups
    ]
