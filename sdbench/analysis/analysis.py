"""One analysis of a results frame: every figure the report shows, computed once.

`analyse(results)` runs best, per image, levers, outliers, the answers, the fleet view, the GPU
recommendations and serving capacity plans (with one performance-model calibration and one set of
per-GPU corrections, fitted once and passed to each), change points and the last-two-runs comparison. `sdbench.report` only
renders the `Analysis` it returns.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from sdbench.analysis import compare, history
from sdbench.analysis.answers import DeviceAnswers, answers
from sdbench.analysis.best import compile_gains, fastest_settings, flag_latest
from sdbench.analysis.correction import GpuCorrection, fit_corrections
from sdbench.analysis.fleet import Fleet, fleet, spans_machines
from sdbench.analysis.levers import lever_summary, lever_table
from sdbench.analysis.per_image import per_image_figures
from sdbench.analysis.perfmodel import Calibration, calibration_for
from sdbench.analysis.precision_gains import precision_gains
from sdbench.analysis.recommend import recommend
from sdbench.analysis.workload import ImageWorkload
from sdbench.errors import SdbenchError
from sdbench.machine import latest_per_series, runs_per_series, series_id
from sdbench.store.schema import guided

MAX_WORKLOADS = 12  # recommendations per report: the distilled suite alone has six per device
WORKLOAD_KEYS = ["model", "height", "width", "batch_size", "steps", "cfg"]
CAPACITY_KEYS = [
    "model", "height", "width", "precision", "steps", "cfg", "batch_size", "max_wait_ms", "slo_p99_s",
]  # fmt: skip


@dataclass(frozen=True)
class WorkloadPicks:
    """The GPUs to pick for one measured workload (`recommend`'s table), or why there are none."""

    workload: dict  # WORKLOAD_KEYS -> the values as measured
    table: pd.DataFrame | None
    error: str | None = None


@dataclass(frozen=True)
class CapacityPlan:
    """The GPUs to rent for the load one served workload met, or why none was planned."""

    workload: dict  # CAPACITY_KEYS -> the values as served
    rate_rps: float  # the highest throughput served within the SLO (else the highest at all)
    table: pd.DataFrame | None
    error: str | None = None


@dataclass(frozen=True)
class History:
    """Series measured in several runs: their ok rows, change points and the last two runs compared."""

    repeated: int  # series measured in more than one run on one machine
    rows: pd.DataFrame  # their ok rows, with `series_id`
    change_points: pd.DataFrame
    comparison: compare.Comparison | None
    baseline_run: str | None  # the runs compared (None: no comparison)
    current_run: str | None
    comparison_note: str | None = None  # why there is no comparison


@dataclass(frozen=True)
class Analysis:
    """Everything a report of `frame` shows; built by `analyse`, read by `sdbench.report`."""

    frame: pd.DataFrame  # every row given
    latest: pd.DataFrame  # the latest row of each series
    calibration: Calibration  # the performance model, fitted once with these results
    corrections: dict[str, GpuCorrection]  # per measured catalogue GPU, against `calibration`
    answers: tuple[DeviceAnswers, ...]
    fleet: Fleet | None  # None: every row comes from one host's devices
    outliers: pd.DataFrame  # latest rows flagged as outliers, with `outlier_reason`
    fastest: pd.DataFrame  # best.fastest_settings
    precision_gains: pd.DataFrame
    compile_gains: pd.DataFrame
    levers: pd.DataFrame  # levers.lever_table
    lever_summary: pd.DataFrame  # empty when no lever was measured
    per_image: pd.DataFrame
    recommendations: tuple[WorkloadPicks, ...]
    workloads_not_shown: int  # workloads beyond MAX_WORKLOADS
    capacity: tuple[CapacityPlan, ...]
    history: History | None  # None: a single run


def analyse(results: pd.DataFrame, baseline_machine: str | None = None) -> Analysis:
    """The whole analysis of these results; `baseline_machine` is what the fleet view compares with."""
    latest = latest_per_series(results)
    calibration = calibration_for(latest)
    corrections = fit_corrections(latest, calibration)
    flagged = flag_latest(results)  # outliers are flagged once, for every figure that reads them
    fastest = fastest_settings(results, flagged=flagged)
    levers = lever_table(results)
    picks, not_shown = recommendations(latest, calibration, corrections)
    return Analysis(
        frame=results,
        latest=latest,
        calibration=calibration,
        corrections=corrections,
        answers=tuple(answers(results, calibration, fastest, corrections, flagged)),
        fleet=(
            fleet(results, baseline_machine)
            if spans_machines(results) or baseline_machine is not None
            else None
        ),
        outliers=flagged_outliers(results, flagged),
        fastest=fastest,
        precision_gains=precision_gains(results, flagged=flagged),
        compile_gains=compile_gains(latest),
        levers=levers,
        lever_summary=(
            pd.DataFrame() if (levers["setting"] == "none").all() else lever_summary(results)
        ),
        per_image=per_image_figures(latest),
        recommendations=picks,
        workloads_not_shown=not_shown,
        capacity=_capacity_plans(latest, calibration, corrections),
        history=_history(results),
    )


def as_analysis(results: pd.DataFrame | Analysis, baseline_machine: str | None = None) -> Analysis:
    """`results` itself when it is an Analysis already, else `analyse(results, baseline_machine)`."""
    return results if isinstance(results, Analysis) else analyse(results, baseline_machine)


def flagged_outliers(results: pd.DataFrame, flagged: pd.DataFrame | None = None) -> pd.DataFrame:
    """The latest rows `outliers.flag_outliers` flags, with their `outlier_reason`; `flagged` is
    `best.flag_latest(results)` when the caller has it already."""
    flagged = flag_latest(results) if flagged is None else flagged
    return flagged[flagged["outlier_reason"].notna()]


def recommendations(
    latest: pd.DataFrame,
    calibration: Calibration | None = None,
    corrections: dict[str, GpuCorrection] | None = None,
) -> tuple[tuple[WorkloadPicks, ...], int]:
    """recommend() for each measured workload (fp16, default settings), at most MAX_WORKLOADS,
    and how many workloads were left out; the model's fit defaults to the one to `latest`."""
    calibration = calibration or calibration_for(latest)
    corrections = fit_corrections(latest, calibration) if corrections is None else corrections
    workloads = latest.assign(cfg=guided(latest))[WORKLOAD_KEYS].dropna().drop_duplicates()
    picks = []
    for _, w in workloads.sort_values(WORKLOAD_KEYS).head(MAX_WORKLOADS).iterrows():
        try:
            workload = ImageWorkload.usual(
                str(w["model"]), int(w["height"]), int(w["width"]), int(w["batch_size"]),
                steps=int(w["steps"]), cfg=bool(w["cfg"]),
            )  # fmt: skip
            table = recommend(
                workload, latest, calibration=calibration, corrections=corrections
            ).table
        except SdbenchError as error:  # the model cannot answer for this workload
            picks.append(WorkloadPicks(dict(w), None, str(error)))
            continue
        picks.append(WorkloadPicks(dict(w), table))
    return tuple(picks), max(0, len(workloads) - MAX_WORKLOADS)


def _capacity_plans(
    latest: pd.DataFrame, calibration: Calibration, corrections: dict[str, GpuCorrection]
) -> tuple[CapacityPlan, ...]:
    """For each workload served: the GPUs to rent for the load it was served at, same SLO."""
    from sdbench.serving.capacity import Costs, Policy, capacity

    if "stage" not in latest or "offered_rps" not in latest:
        return ()
    served = latest[(latest["stage"] == "serve") & (latest["status"] == "ok")]
    served = served[served["offered_rps"].notna()]
    measured = latest[latest["stage"] != "serve"]
    plans = []
    for key, rows in served.groupby(CAPACITY_KEYS, sort=True):
        workload = dict(zip(CAPACITY_KEYS, key, strict=True))
        held = rows[rows["slo_ok"].fillna(False).astype(bool)]
        rate = float((held if not held.empty else rows)["throughput_rps"].max())
        policy = Policy(
            float(workload["slo_p99_s"]),
            int(workload["batch_size"]),
            float(workload["max_wait_ms"]) / 1000,
        )
        try:
            usual = ImageWorkload.usual(
                str(workload["model"]), int(workload["height"]), int(workload["width"]), 1,
                str(workload["precision"]), int(workload["steps"]), cfg=bool(workload["cfg"]),
            )  # fmt: skip
            table = capacity(usual, rate, policy, Costs(cloud=True), measured,
                             calibration=calibration, corrections=corrections)  # fmt: skip
        except SdbenchError as error:
            plans.append(CapacityPlan(workload, rate, None, str(error)))
            continue
        plans.append(CapacityPlan(workload, rate, table))
    return tuple(plans)


def _history(frame: pd.DataFrame) -> History | None:
    """Series measured in more than one run on one machine, their change points, the last pair."""
    if frame["run_id"].nunique() < 2:
        return None
    frame = frame.assign(series_id=series_id(frame))
    runs = runs_per_series(frame)
    repeated = {f"{machine}/{cell}" for (machine, cell), n in runs.items() if n > 1}
    rows = frame[frame["series_id"].isin(repeated) & (frame["status"] == "ok")]
    if not repeated:
        return History(0, rows, pd.DataFrame(), None, None, None)
    changes = history.change_points(rows, metric="median_ms")
    return History(len(repeated), rows, changes, *_last_two_runs(frame))


def _last_two_runs(
    frame: pd.DataFrame,
) -> tuple[compare.Comparison | None, str | None, str | None, str | None]:
    """The latest run against the previous run on the same machine(s), as `sdbench compare`."""
    order = frame.groupby("run_id")["started_at"].min().sort_values().index
    machines = set(frame.loc[frame["run_id"] == order[-1], "machine_id"])
    shared = frame[frame["machine_id"].isin(machines)]
    shared_runs = set(shared["run_id"])
    order = [run for run in order if run in shared_runs]
    if len(order) < 2:
        return (
            None,
            None,
            None,
            f"Run {order[-1]} has no earlier run on the same machine to compare with.",
        )
    baseline, current = shared[shared["run_id"] == order[-2]], shared[shared["run_id"] == order[-1]]
    try:
        comparison = compare.compare_runs(baseline, current, threshold_pct=5.0)
    except SdbenchError as error:  # the last two runs measured different cells
        return None, order[-2], order[-1], f"No compare table: {error}"
    return comparison, order[-2], order[-1], None
