"""Answer "how fast, how much memory, how much energy on GPU X?": measured when we have it, else the model."""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields

import pandas as pd

from sdbench.analysis.correction import GpuCorrection, fit_corrections
from sdbench.analysis.levers import measured_memory_ratios
from sdbench.analysis.memory_model import estimate_memory, usable_memory_bytes, ways_to_fit
from sdbench.analysis.perfmodel import Calibration, calibration_for, predict_stage_seconds
from sdbench.analysis.workload import ImageWorkload
from sdbench.datafiles import read_data_csv
from sdbench.gpus import GPU, catalogue_name, find_gpu
from sdbench.machine import latest_per_series
from sdbench.models.registry import get_model
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


def _interval_pct(workload: ImageWorkload) -> tuple[float, float]:
    """The family's 80% interval; few-step calls take the few-step rows' where that is wider."""
    from sdbench.analysis.validate import FEW_STEP_FAMILY, FEW_STEPS

    intervals = model_interval80_pct()
    widest = (min(i[0] for i in intervals.values()), max(i[1] for i in intervals.values()))
    low, high = intervals.get(workload.family, widest)
    if workload.steps <= FEW_STEPS and FEW_STEP_FAMILY in intervals:
        few_low, few_high = intervals[FEW_STEP_FAMILY]
        low, high = min(low, few_low), max(high, few_high)
    return low, high


def _error_pct(workload: ImageWorkload) -> float:
    """The family's cross-validated median error; few-step calls take the few-step rows' if larger."""
    from sdbench.analysis.validate import FEW_STEP_FAMILY, FEW_STEPS

    errors = model_error_pct()
    family = float(errors.get(workload.family, max(errors.values())))
    if workload.steps <= FEW_STEPS and FEW_STEP_FAMILY in errors:
        return max(family, float(errors[FEW_STEP_FAMILY]))
    return family


def same_workload(results: pd.DataFrame, workload: ImageWorkload) -> pd.Series:
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


def measured_rows(results: pd.DataFrame | None, workload: ImageWorkload) -> pd.DataFrame:
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


@dataclass(frozen=True, eq=False)
class WorkloadEvidence:
    """What results measured of one workload, gathered once for the many GPUs asked about it."""

    rows: pd.DataFrame  # measured_rows: the latest ok accelerator rows, with catalogue_gpu
    memory_ratios: dict[str, tuple[float, str]]  # levers.measured_memory_ratios of its model

    def on(self, gpu: str) -> pd.DataFrame:
        """The rows measured on the catalogue GPU `gpu` (split once, not filtered per GPU)."""
        return self._by_gpu.get(gpu, self._none)

    @functools.cached_property
    def _none(self) -> pd.DataFrame:
        """No rows, made once: most GPUs asked about measured nothing (a wide slice costs ~2 ms)."""
        return self.rows.iloc[:0]

    @functools.cached_property
    def _by_gpu(self) -> dict[str, pd.DataFrame]:
        if self.rows.empty:
            return {}
        return {str(gpu): rows for gpu, rows in self.rows.groupby("catalogue_gpu", sort=False)}

    @functools.cached_property
    def pipeline_peak(self) -> float | None:
        """The median peak memory of the workload's pipeline rows on any GPU."""
        return stage_median(self.rows, "pipeline", "peak_mem_reserved_bytes")


def workload_evidence(results: pd.DataFrame | None, workload: ImageWorkload) -> WorkloadEvidence:
    """The measured rows and lever memory ratios `predict` reads for `workload`."""
    return WorkloadEvidence(
        measured_rows(results, workload), measured_memory_ratios(results, workload.model)
    )


def stage_median(rows: pd.DataFrame, stage: str, column: str) -> float | None:
    """The median of `column` over the rows of `stage`, or None when none has a value."""
    # The column first, then the rows: filtering every column of a wide frame cost more.
    values = rows[column][rows["stage"] == stage].dropna() if not rows.empty else []
    return float(pd.Series(values).median()) if len(values) else None


FIRST_FIELDS = ("gpu", "workload", "it_per_s", "image_s")  # to_dict writes these first, by hand


@dataclass(frozen=True)
class Prediction:
    """One txt2img call of a workload on one GPU: speed, memory and energy, each measured where
    the results had it, else the performance and memory models' figure with its 80% interval."""

    gpu: str
    workload: ImageWorkload
    it_per_s: float  # denoising iterations per second at the batch, cfg included
    image_s: float  # one call producing batch_size images
    s_per_image_low: float
    s_per_image_high: float
    model_error_pct: float
    interval80_low_pct: float
    interval80_high_pct: float
    peak_vram_bytes: int
    weights_bytes: int
    activation_bytes: int
    vram_bytes: int  # what the workload may use: all of it, or a share of unified memory
    fits: bool
    headroom_bytes: int
    ways_to_fit: tuple[str, ...]
    calibration_family: str | None
    calibrated: bool
    avg_power_w: float
    energy_per_image_j: float
    source: str  # measured | predicted | "calibrated on N measured cells" (GpuCorrection.source)
    memory_source: str
    correction_factor: float | None  # what the GPU's own measured cells scaled the model's time by

    @property
    def s_per_image(self) -> float:
        return self.image_s / self.workload.batch_size

    @property
    def images_per_s(self) -> float:
        return self.workload.batch_size / self.image_s

    def to_dict(self) -> dict:
        """The answer as `predict --json` prints it: Parquet column names, the workload inline."""
        w = self.workload
        return {
            "gpu": self.gpu, "model": w.model, "height": w.height, "width": w.width,
            "batch_size": w.batch_size, "precision": w.precision, "steps": w.steps, "cfg": w.cfg,
            "attention": w.attention, "compile": w.compile, "it_per_s": self.it_per_s,
            "image_s": self.image_s, "s_per_image": self.s_per_image, "images_per_s": self.images_per_s,
            **{f.name: getattr(self, f.name) for f in fields(self) if f.name not in FIRST_FIELDS},
            "ways_to_fit": list(self.ways_to_fit),
        }  # fmt: skip


def predict(
    gpu: str | GPU,
    workload: ImageWorkload,
    results: pd.DataFrame | None = None,
    calibration: Calibration | None = None,
    corrections: dict[str, GpuCorrection] | None = None,
    evidence: WorkloadEvidence | None = None,
) -> Prediction:
    """Speed, memory and energy of one txt2img call on `gpu`; measured figures win over the model.

    `calibration` defaults to the reference calibration refitted with `results`, `corrections`
    to the per-GPU corrections fitted on `results` against it (analysis.correction); pass both
    to reuse them across many GPUs, and `evidence` (workload_evidence) when asking about one
    workload on many GPUs: reading a fleet's results once per GPU made reports slow. A workload
    not measured on a GPU with measured cells
    elsewhere is the model's figure times that GPU's correction. ImageWorkload.usual fills a
    model's usual steps and guidance.
    """
    target = gpu if isinstance(gpu, GPU) else find_gpu(gpu)
    get_model(workload.model)
    if evidence is None:
        evidence = workload_evidence(results, workload)
    measured = evidence.on(target.name)
    calibration = calibration or calibration_for(results)
    if corrections is None:
        corrections = fit_corrections(results, calibration)
    it_per_s, image_s, source, correction = _speed(
        target, workload, measured, calibration, corrections
    )
    calibrated_as = calibration.family_for(target.family)
    widening = _band_widening(target.family, calibrated_as)
    error = 0.0 if source == "measured" else _error_pct(workload) / 100.0 * widening
    low_pct, high_pct = (
        (0.0, 0.0) if source == "measured" else tuple(widening * p for p in _interval_pct(workload))
    )
    s_per_image = image_s / workload.batch_size
    power_w = stage_median(measured, "pipeline", "avg_power_w") or target.tdp_w * POWER_SHARE_OF_TDP
    energy = (
        stage_median(measured, "pipeline", "energy_per_image_j")
        or power_w * image_s / workload.batch_size
    )
    return Prediction(
        gpu=target.name, workload=workload, it_per_s=it_per_s, image_s=image_s,
        s_per_image_low=s_per_image * max(1 + low_pct / 100, 0.05),
        s_per_image_high=s_per_image * (1 + high_pct / 100), model_error_pct=error * 100.0,
        interval80_low_pct=low_pct, interval80_high_pct=high_pct,
        **_memory(target, workload, measured, evidence),
        calibration_family=calibrated_as,
        calibrated=source != "predicted" or calibrated_as is not None,
        avg_power_w=power_w, energy_per_image_j=energy, source=source,
        correction_factor=None if correction is None else correction.factor,
    )  # fmt: skip


def _speed(
    target: GPU,
    workload: ImageWorkload,
    measured: pd.DataFrame,
    calibration: Calibration,
    corrections: dict[str, GpuCorrection],
) -> tuple[float, float, str, GpuCorrection | None]:
    """(it/s, seconds per call, source, correction applied): the GPU's measured rows where there
    are any, the model's figures for the rest (a measured it/s with the model's text encoder and
    VAE times); an unmeasured workload on a GPU measured elsewhere takes its correction."""
    predicted = predict_stage_seconds(target, workload, calibration)
    it_per_s = stage_median(measured, "unet", "it_per_s")
    image_s = stage_median(measured, "pipeline", "median_ms")
    source = "measured" if (it_per_s or image_s) else "predicted"
    correction = corrections.get(target.name) if source == "predicted" else None
    if correction is not None:
        predicted = {stage: s * correction.factor for stage, s in predicted.items()}
        source = correction.source
    it_per_s = it_per_s or 1.0 / predicted["unet_step"]
    if image_s is not None:
        return it_per_s, image_s / 1000.0, source, correction
    steps = workload.steps
    image_s = predicted["call"] - steps * predicted["unet_step"] + steps / it_per_s
    return it_per_s, image_s, source, correction


def _memory(
    target: GPU,
    workload: ImageWorkload,
    measured: pd.DataFrame,
    evidence: WorkloadEvidence,
) -> dict:
    """The peak, where it goes, whether it fits the GPU and what would make it fit."""
    memory = estimate_memory(workload)
    # Memory hardly depends on which GPU ran the workload: a peak measured on any GPU beats the model.
    measured_peak = (
        stage_median(measured, "pipeline", "peak_mem_reserved_bytes") or evidence.pipeline_peak
    )
    peak = measured_peak or memory.peak_bytes
    usable = usable_memory_bytes(target.vram_bytes, target.unified_memory)
    ways = () if peak <= usable else tuple(ways_to_fit(workload, usable, evidence.memory_ratios))
    return {
        "peak_vram_bytes": int(peak), "weights_bytes": memory.weights_bytes,
        "activation_bytes": memory.activation_bytes, "vram_bytes": usable,
        "fits": bool(peak <= usable), "headroom_bytes": int(usable - peak), "ways_to_fit": ways,
        "memory_source": "measured" if measured_peak else "predicted",
    }  # fmt: skip


def denoising_label(steps: int, cfg: bool) -> str:
    """ "50 steps", "4 steps without cfg", "1 step without cfg": how a workload denoises."""
    return f"{steps} step{'' if steps == 1 else 's'}{'' if cfg else ' without cfg'}"


def _band_widening(family: str, calibrated_as: str | None) -> float:
    """Cross-validation measured the error of GPUs whose family had data; others are less certain."""
    if calibrated_as is None:
        return 2.0  # no family data at all: global efficiency only
    return 1.0 if calibrated_as == family else 1.5  # borrowed from a neighbouring family
