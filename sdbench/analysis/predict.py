"""Answer "how fast, how much memory, how much energy on GPU X?": measured when we have it, else the model."""

from __future__ import annotations

import functools
import math

import pandas as pd

from sdbench.analysis.correction import GpuCorrection, fit_corrections
from sdbench.analysis.levers import measured_memory_ratios
from sdbench.analysis.memory_model import estimate_memory, usable_memory_bytes, ways_to_fit
from sdbench.analysis.perfmodel import (
    Calibration,
    Workload,
    calibration_for,
    predict_stage_seconds,
)
from sdbench.datafiles import read_data_csv
from sdbench.gpus import GPU, catalogue_name, find_gpu
from sdbench.machine import latest_per_series
from sdbench.models.registry import get_model, model_family
from sdbench.store.schema import guided, plain_levers

# Average board power while generating, as a share of TDP, when no measured power exists: SD
# keeps the GPU busy but rarely at its power limit. An assumption, replaced by measured avg_power_w.
POWER_SHARE_OF_TDP = 0.85


@functools.lru_cache(maxsize=1)
def model_error_pct() -> dict[str, float]:
    """Median absolute % error per model family from the shipped cross-validation."""
    frame = read_data_csv("model_error.csv")
    return dict(zip(frame["model_family"], frame["median_abs_pct_error"], strict=True))


@functools.lru_cache(maxsize=1)
def model_interval80_pct() -> dict[str, tuple[float, float]]:
    """Per model family, the 80% interval of measured / predicted seconds from the shipped
    cross-validation, as signed % deviations that always include 0 (the prediction itself)."""
    frame = read_data_csv("model_error.csv")
    return {
        str(row.model_family): (min(row.interval80_low_pct, 0.0), max(row.interval80_high_pct, 0.0))
        for row in frame.itertuples()
    }


def _interval_pct(model: str, steps: int) -> tuple[float, float]:
    """The family's 80% interval; few-step calls take the few-step rows' where that is wider."""
    from sdbench.analysis.validate import FEW_STEP_FAMILY, FEW_STEPS

    intervals = model_interval80_pct()
    widest = (min(i[0] for i in intervals.values()), max(i[1] for i in intervals.values()))
    low, high = intervals.get(model_family(model), widest)
    if steps <= FEW_STEPS and FEW_STEP_FAMILY in intervals:
        few_low, few_high = intervals[FEW_STEP_FAMILY]
        low, high = min(low, few_low), max(high, few_high)
    return low, high


def _error_pct(model: str, steps: int) -> float:
    """The family's cross-validated median error; few-step calls take the few-step rows' if larger."""
    from sdbench.analysis.validate import FEW_STEP_FAMILY, FEW_STEPS

    errors = model_error_pct()
    family = float(errors.get(model_family(model), max(errors.values())))
    if steps <= FEW_STEPS and FEW_STEP_FAMILY in errors:
        return max(family, float(errors[FEW_STEP_FAMILY]))
    return family


def same_workload(results: pd.DataFrame, workload: Workload) -> pd.Series:
    """Ok rows of the workload's model, size, batch and guidance; pipeline rows at its steps too.

    A unet row is one step, so any step count's rows describe it; a pipeline row is a whole
    call, so only one made at the workload's steps does. Text encoder rows of any image size
    count (77 tokens whatever the size). Rows without a cfg column ran with cfg.
    """
    steps = results["steps"] if "steps" in results.columns else pd.Series(None, index=results.index)
    return (
        (results["status"] == "ok")
        & (results["model"] == workload.model)
        & (
            ((results["height"] == workload.height) & (results["width"] == workload.width))
            | (results["stage"] == "text_encoder")
        )
        & (results["batch_size"] == workload.batch_size)
        & (guided(results) == workload.cfg)
        & ((results["stage"] != "pipeline") | (steps == workload.steps))
        & plain_levers(results)  # a lever's rows answer for that lever, not for the plain model
    )


def measured_rows(results: pd.DataFrame | None, workload: Workload) -> pd.DataFrame:
    """Ok rows of `results` on accelerators (not the CPU) for exactly this workload, any stage.

    Only the latest run of each series (a cell on one machine) counts; several machines with the
    same GPU each contribute their own rows.
    """
    if results is None or results.empty:
        return pd.DataFrame()
    results = latest_per_series(results)
    same = (
        same_workload(results, workload)
        & ~results["device"].astype(str).str.startswith("cpu")
        & (results["precision"] == workload.precision)
        & (results["attention"].fillna("sdpa") == workload.attention)
    )
    rows = results[same].copy()
    rows["catalogue_gpu"] = rows["device_name"].map(lambda name: catalogue_name(str(name)))
    return rows


def stage_median(rows: pd.DataFrame, stage: str, column: str) -> float | None:
    """The median of `column` over the rows of `stage`, or None when none has a value."""
    values = rows.loc[rows["stage"] == stage, column].dropna() if not rows.empty else []
    return float(pd.Series(values).median()) if len(values) else None


def predict(
    gpu: str | GPU,
    model: str,
    height: int,
    width: int | None = None,
    batch_size: int = 1,
    precision: str = "fp16",
    steps: int | None = None,
    attention: str = "sdpa",
    compile: str = "none",
    results: pd.DataFrame | None = None,
    calibration: Calibration | None = None,
    cfg: bool | None = None,
    corrections: dict[str, GpuCorrection] | None = None,
) -> dict:
    """Speed, memory and energy of one txt2img call on `gpu`; measured figures win over the model.

    `steps` and `cfg` default to the model's usual use (SD1.5 50 steps with cfg, LCM 4 without).
    `calibration` defaults to the reference calibration refitted with `results`, `corrections`
    to the per-GPU corrections fitted on `results` against it (analysis.correction); pass both
    to reuse them across many GPUs. A workload not measured on a GPU with measured cells
    elsewhere is the model's figure times that GPU's correction.
    """
    target = gpu if isinstance(gpu, GPU) else find_gpu(gpu)
    spec = get_model(model)
    workload = usual_workload(
        model, height, width, batch_size, precision, steps, attention, compile, cfg
    )
    workload_rows = measured_rows(results, workload)
    measured = (
        workload_rows[workload_rows["catalogue_gpu"] == target.name]
        if not workload_rows.empty
        else workload_rows
    )
    calibration = calibration or calibration_for(results)
    predicted = predict_stage_seconds(target, workload, calibration)
    calibrated_as = calibration.family_for(target.family)
    it_per_s = stage_median(measured, "unet", "it_per_s")
    image_s = stage_median(measured, "pipeline", "median_ms")
    source = "measured" if (it_per_s or image_s) else "predicted"
    if corrections is None:
        corrections = fit_corrections(results, calibration)
    correction = corrections.get(target.name) if source == "predicted" else None
    if correction is not None:
        predicted = {stage: s * correction.factor for stage, s in predicted.items()}
        source = correction.source
    it_per_s = it_per_s or 1.0 / predicted["unet_step"]
    if image_s is not None:
        image_s /= 1000.0
    else:
        image_s = (
            predicted["call"] - workload.steps * predicted["unet_step"] + workload.steps / it_per_s
        )
    memory = estimate_memory(workload)
    # Memory hardly depends on which GPU ran the workload: a peak measured on any GPU beats the model.
    measured_peak = stage_median(measured, "pipeline", "peak_mem_reserved_bytes") or stage_median(
        workload_rows, "pipeline", "peak_mem_reserved_bytes"
    )
    peak = measured_peak or memory.peak_bytes
    usable = usable_memory_bytes(target.vram_bytes, target.unified_memory)
    widening = _band_widening(target.family, calibrated_as)
    error = 0.0 if source == "measured" else _error_pct(model, workload.steps) / 100.0 * widening
    low_pct, high_pct = (
        (0.0, 0.0)
        if source == "measured"
        else tuple(widening * p for p in _interval_pct(model, workload.steps))
    )
    power_w = stage_median(measured, "pipeline", "avg_power_w") or target.tdp_w * POWER_SHARE_OF_TDP
    energy = (
        stage_median(measured, "pipeline", "energy_per_image_j") or power_w * image_s / batch_size
    )
    return {
        "gpu": target.name, "model": spec.name, "height": workload.height, "width": workload.width,
        "batch_size": batch_size, "precision": precision, "steps": workload.steps, "cfg": workload.cfg, "attention": attention,
        "compile": compile, "it_per_s": it_per_s, "image_s": image_s, "s_per_image": image_s / batch_size,
        "images_per_s": batch_size / image_s, "s_per_image_low": image_s / batch_size * max(1 + low_pct / 100, 0.05),
        "s_per_image_high": image_s / batch_size * (1 + high_pct / 100), "model_error_pct": error * 100.0,
        "interval80_low_pct": low_pct, "interval80_high_pct": high_pct,
        "peak_vram_bytes": int(peak), "weights_bytes": memory.weights_bytes, "activation_bytes": memory.activation_bytes,
        "vram_bytes": usable, "fits": bool(peak <= usable), "headroom_bytes": int(usable - peak),
        "ways_to_fit": [] if peak <= usable else ways_to_fit(workload, usable, measured_memory_ratios(results, model)),
        "calibration_family": calibrated_as, "calibrated": source != "predicted" or calibrated_as is not None, "avg_power_w": power_w, "energy_per_image_j": energy, "source": source,
        "memory_source": "measured" if measured_peak else "predicted",
        "correction_factor": None if correction is None else correction.factor,
    }  # fmt: skip


def usual_workload(
    model: str,
    height: int,
    width: int | None = None,
    batch_size: int = 1,
    precision: str = "fp16",
    steps: int | None = None,
    attention: str = "sdpa",
    compile: str = "none",
    cfg: bool | None = None,
) -> Workload:
    """The workload asked for, with steps and guidance the model's usual where not given."""
    return Workload.usual(
        model, height, width, batch_size, precision, steps, attention, compile, cfg
    )


def denoising_label(steps: int, cfg: bool) -> str:
    """ "50 steps", "4 steps without cfg", "1 step without cfg": how a workload denoises."""
    return f"{steps} step{'' if steps == 1 else 's'}{'' if cfg else ' without cfg'}"


def _band_widening(family: str, calibrated_as: str | None) -> float:
    """Cross-validation measured the error of GPUs whose family had data; others are less certain."""
    if calibrated_as is None:
        return 2.0  # no family data at all: global efficiency only
    return 1.0 if calibrated_as == family else 1.5  # borrowed from a neighbouring family


def cost_per_1000_usd(
    s_per_image: float,
    energy_per_image_j: float | None,
    price_usd: float | None,
    electricity_usd_per_kwh: float,
    lifetime_years: float,
    hours_per_day: float,
    cloud_usd_per_h: float | None = None,
) -> float | None:
    """Cost of 1000 images: cloud time, or electricity plus the purchase spread over its use."""
    if cloud_usd_per_h is not None:
        return 1000 * s_per_image / 3600 * cloud_usd_per_h
    if price_usd is None or energy_per_image_j is None or math.isnan(price_usd):
        return None
    images_in_lifetime = lifetime_years * 365 * hours_per_day * 3600 / s_per_image
    electricity = energy_per_image_j / 3.6e6 * electricity_usd_per_kwh
    return 1000 * (price_usd / images_in_lifetime + electricity)
