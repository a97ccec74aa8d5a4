"""Leave-one-GPU-out cross-validation of the performance model on the reference results."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sdbench.analysis.perfmodel import (
    Features,
    Observation,
    calibrate,
    predict_metric,
    reference_observations,
)
from sdbench.models.registry import model_family


@dataclass(frozen=True)
class FamilyError:
    """How well held-out GPUs of one model family were predicted."""

    model_family: str
    rows: int
    gpus: int
    median_abs_pct_error: float
    p90_abs_pct_error: float
    spearman: float
    # 80% of held-out GPUs' measured seconds fell between predicted x (1 + low/100) and (1 + high/100)
    interval80_low_pct: float
    interval80_high_pct: float


FEW_STEPS = 8  # LCM (4), Turbo (1-4), Lightning (2-8): calls where per-call costs dominate
FEW_STEP_FAMILY = "few-step"


def _seconds_per_image_step(metric: str, value: float, steps: int, batch: int) -> float:
    """A figure comparable across metrics: seconds per image per denoising step."""
    if metric == "it_per_s":
        return 1.0 / value / batch
    if metric == "a1111_it_per_s":
        return 1.0 / value
    return value / steps / batch


def cross_validate(observations: list[Observation] | None = None) -> pd.DataFrame:
    """One row per observation: the value predicted with its whole GPU left out of calibration."""
    observations = list(observations if observations is not None else reference_observations())
    rows = []
    for gpu_name in sorted({o.gpu.name for o in observations}):
        held_out = [o for o in observations if o.gpu.name == gpu_name]
        calibration = calibrate([o for o in observations if o.gpu.name != gpu_name])
        features = Features.build([(o.gpu, o.workload, o.metric) for o in held_out])
        for observation, predicted in zip(
            held_out, predict_metric(features, calibration), strict=True
        ):
            w = observation.workload
            rows.append({
                "gpu": gpu_name, "model": w.model, "model_family": model_family(w.model),
                "height": w.height, "width": w.width, "batch_size": w.batch_size, "precision": w.precision,
                "steps": w.steps, "attention": w.attention, "compile": w.compile, "metric": observation.metric,
                "measured": observation.value, "predicted": float(predicted),
                "abs_pct_error": abs(predicted / observation.value - 1.0) * 100.0,
                "measured_s_per_image_step": _seconds_per_image_step(observation.metric, observation.value, w.steps, w.batch_size),
                "predicted_s_per_image_step": _seconds_per_image_step(observation.metric, float(predicted), w.steps, w.batch_size),
                "source": observation.source,
            })  # fmt: skip
    return pd.DataFrame(rows)


def summarise(cv: pd.DataFrame) -> list[FamilyError]:
    """Median and 90th-percentile absolute % error and Spearman rank correlation per model family.

    Spearman compares seconds per image per step, so rows of different metrics and batch sizes
    rank on one scale.
    """
    groups = list(cv.groupby("model_family", sort=True))
    # Few-step calls also get a row of their own: fixed per-call costs, which the many-step
    # rows hardly constrain, dominate them; predict widens their band to this error.
    few = cv[cv["steps"] <= FEW_STEPS]
    if len(few):
        groups.append((FEW_STEP_FAMILY, few))
    return [_family_error(str(family), group) for family, group in groups]


def _family_error(family: str, group: pd.DataFrame) -> FamilyError:
    from scipy.stats import spearmanr  # here: predict reads this module's constants, not its fits

    rho = (
        spearmanr(group["measured_s_per_image_step"], group["predicted_s_per_image_step"]).statistic
        if len(group) > 2
        else float("nan")
    )
    return FamilyError(
        model_family=family, rows=len(group), gpus=group["gpu"].nunique(),
        median_abs_pct_error=float(np.median(group["abs_pct_error"])),
        p90_abs_pct_error=float(np.percentile(group["abs_pct_error"], 90)),
        spearman=float(rho), **_interval80(group),
    )  # fmt: skip


def _interval80(group: pd.DataFrame) -> dict[str, float]:
    """The 10th and 90th percentiles of measured / predicted seconds, as signed % deviations."""
    ratio = group["measured_s_per_image_step"] / group["predicted_s_per_image_step"]
    low, high = np.percentile(ratio, [10, 90])
    return {
        "interval80_low_pct": float(low - 1) * 100,
        "interval80_high_pct": float(high - 1) * 100,
    }
