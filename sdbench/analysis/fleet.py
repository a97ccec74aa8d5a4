"""Several machines side by side: the cells they share, speed against a baseline machine, and the
performance model's prediction beside each catalogue GPU's measurement.

A *shared* cell is one configuration (`cell_id`) that finished ok on at least two machines; its
latest run on each machine is the figure (`latest_per_series`). Speed relative to the baseline
machine is, per machine, the geometric mean over the cells it shares with the baseline of
median(baseline) / median(machine): above 1 is faster. The range over those cells is kept beside
it so a reader sees whether one figure describes them all. Pure pandas; the report renders it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from sdbench.analysis.compare import cell_labels
from sdbench.errors import BadInput, SdbenchError, did_you_mean
from sdbench.machine import (
    ensure_machine_columns,
    latest_per_series,
    machine_names,
    machines_share_a_device,
)

if TYPE_CHECKING:
    from sdbench.analysis.perfmodel import Calibration
    from sdbench.analysis.predict import Prediction
    from sdbench.analysis.workload import ImageWorkload
    from sdbench.gpus import GPU

MAX_SHARED_CELLS = 24  # rows of the side-by-side table; the bar charts take the first few


@dataclass(frozen=True)
class Fleet:
    machines: (
        pd.DataFrame
    )  # one row per machine: label, device, host, software, cells, relative speed
    shared: pd.DataFrame  # one row per (shared cell, machine): median and its 95% CI
    predictions: pd.DataFrame  # one row per catalogue-GPU machine and denoiser cell
    baseline: str  # machine_id of the baseline machine

    @property
    def several(self) -> bool:
        return len(self.machines) > 1


def spans_machines(frame: pd.DataFrame) -> bool:
    """Several hosts, or one device (`cpu`, `cuda:0`) measured on several machines."""
    hosts = frame["host"].dropna().nunique() if "host" in frame else 0
    return hosts > 1 or machines_share_a_device(frame)


def fleet(frame: pd.DataFrame, baseline_machine: str | None = None) -> Fleet:
    """The fleet view of these results; `baseline_machine` is a machine label or id prefix."""
    frame = ensure_machine_columns(frame)
    latest = latest_per_series(frame)
    names = machine_names(latest)
    baseline = choose_baseline(latest, names, baseline_machine)
    ok = latest[(latest["status"] == "ok") & latest["median_ms"].notna()]
    shared = shared_cells(ok, names)
    runs = frame.groupby("machine_id", sort=False)["run_id"].nunique()
    machines = machine_table(latest, ok, names, baseline, runs)
    return Fleet(machines, shared, predictions_beside_measurements(ok, names), baseline)


def choose_baseline(latest: pd.DataFrame, names: dict[str, str], wanted: str | None) -> str:
    """The machine named by label or id prefix; by default the one with the most ok cells."""
    if wanted is None:
        ok = latest[latest["status"] == "ok"]
        counts = (ok if len(ok) else latest)["machine_id"].value_counts()
        return str(sorted(counts.index, key=lambda m: (-counts[m], names[m]))[0])
    matches = [m for m, label in names.items() if wanted in (label, m) or m.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    labels = sorted(names.values())
    problem = "matches several machines" if matches else "is not a machine in these results"
    raise BadInput(
        f'--baseline-machine "{wanted}" {problem}.{did_you_mean(wanted, labels)} '
        f"Give one of: {', '.join(labels)} (a label, or the first digits of a machine_id)."
    )


def shared_cells(ok: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """Per cell that ran ok on two or more machines, one row per machine with its median and CI."""
    machines_per_cell = ok.groupby("cell_id")["machine_id"].nunique()
    cells = machines_per_cell[machines_per_cell > 1].index
    rows = ok[ok["cell_id"].isin(cells)]
    if rows.empty:
        return pd.DataFrame(columns=SHARED_COLUMNS)
    order = (
        rows.groupby("cell_id")["machine_id"].nunique().sort_values(ascending=False, kind="stable")
    )
    keep = list(order.index[:MAX_SHARED_CELLS])
    rows = rows[rows["cell_id"].isin(keep)]
    table = pd.DataFrame(
        {
            "cell_id": rows["cell_id"],
            "label": cell_labels(rows),
            "machine_id": rows["machine_id"],
            "machine": rows["machine_id"].map(names),
            "median_ms": rows["median_ms"].astype(float),
            "ci95_low_ms": pd.to_numeric(rows.get("ci95_low_ms"), errors="coerce"),
            "ci95_high_ms": pd.to_numeric(rows.get("ci95_high_ms"), errors="coerce"),
            "it_per_s": pd.to_numeric(rows.get("it_per_s"), errors="coerce"),
            "energy_per_image_j": pd.to_numeric(rows.get("energy_per_image_j"), errors="coerce"),
        }
    )
    rank = {cell: index for index, cell in enumerate(keep)}
    table = table.assign(_rank=table["cell_id"].map(rank))
    return table.sort_values(["_rank", "machine"]).drop(columns="_rank").reset_index(drop=True)


SHARED_COLUMNS = [
    "cell_id",
    "label",
    "machine_id",
    "machine",
    "median_ms",
    "ci95_low_ms",
    "ci95_high_ms",
    "it_per_s",
    "energy_per_image_j",
]


def machine_table(
    latest: pd.DataFrame, ok: pd.DataFrame, names: dict[str, str], baseline: str, runs: pd.Series
) -> pd.DataFrame:
    """One row per machine: what it is, how many runs (`runs`: every run read, not only those
    whose rows are the latest) and cells it has, its speed against the baseline."""
    base = ok[ok["machine_id"] == baseline].set_index("cell_id")["median_ms"]
    # One pass over the ok rows: each one's ratio to the baseline's median of its cell.
    ratios = (ok["cell_id"].map(base) / ok["median_ms"]).astype(float)
    ratios_by_machine = dict(
        tuple(ratios[ok["cell_id"].isin(base.index)].groupby(ok["machine_id"]))
    )
    # Only the identity columns: a row of a fleet's hundred-odd columns per machine cost ~1 ms.
    shown = [name for name in IDENTITY_SHOWN if name in latest]
    firsts = latest.drop_duplicates("machine_id").set_index("machine_id")[shown]
    by_machine = latest.groupby("machine_id", sort=False)
    cell_counts = by_machine.size()
    ok_counts = (latest["status"] == "ok").groupby(latest["machine_id"], sort=False).sum()
    rows = []
    for machine in cell_counts.index:
        mine = ratios_by_machine.get(machine, pd.Series(dtype=float))
        first = firsts.loc[machine]
        rows.append(
            {
                "machine_id": machine,
                "machine": names[machine],
                "baseline": machine == baseline,
                **{name: first.get(name) for name in IDENTITY_SHOWN},
                "runs": int(runs[machine]),
                "cells": cell_counts[machine],
                "ok": int(ok_counts[machine]),
                "shared_with_baseline": len(mine),
                "relative_speed": _geomean(mine),
                "relative_speed_min": float(mine.min()) if len(mine) else None,
                "relative_speed_max": float(mine.max()) if len(mine) else None,
            }
        )
    table = pd.DataFrame(rows)
    return table.sort_values(["baseline", "machine"], ascending=[False, True]).reset_index(
        drop=True
    )


IDENTITY_SHOWN = ("device_name", "gpu_count", "host", "torch", "cuda", "driver")


def _geomean(ratios: pd.Series) -> float | None:
    values = [float(r) for r in ratios if r and r > 0 and math.isfinite(r)]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def predictions_beside_measurements(ok: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """Each catalogue GPU's measured denoiser it/s beside the model's prediction for that cell.

    The prediction uses the reference calibration only (not these results), so the error shown
    is the model's own on this machine.
    """
    from sdbench.analysis.perfmodel import reference_calibration
    from sdbench.analysis.workload import ImageWorkload

    unet = ok[(ok["stage"] == "unet") & ok["it_per_s"].notna()]
    calibration = reference_calibration()
    labels = cell_labels(unet)
    # Machines with the same card ran the same cells: one prediction per (GPU, workload).
    answers: dict[tuple[str, ImageWorkload], Prediction | None] = {}
    gpus: dict[str, GPU | None] = {}
    rows = []
    for machine, group in _rows_per_machine(unet):
        name = str(group[0][1]["device_name"])
        if name not in gpus:
            gpus[name] = _catalogue_gpu(name)
        gpu = gpus[name]
        if gpu is None:
            continue  # not a catalogue GPU (a CPU, or a card the catalogue lacks)
        for index, row in group:
            try:
                workload = ImageWorkload.usual(
                    str(row["model"]), int(row["height"]), int(row["width"]), int(row["batch_size"]),
                    str(row["precision"]), _steps(row), str(row["attention"]), str(row["compile"]),
                    cfg=bool(row["cfg"]) if pd.notna(row.get("cfg")) else None,
                )  # fmt: skip
            except SdbenchError:
                continue  # the model cannot answer for this cell (an unknown model, say)
            key = (gpu.name, workload)
            if key not in answers:
                answers[key] = _prediction(gpu, workload, calibration)
            answer = answers[key]
            if answer is None:
                continue
            measured, predicted = float(row["it_per_s"]), answer.it_per_s
            rows.append(
                {
                    "machine_id": machine,
                    "machine": names[machine],
                    "gpu": gpu.name,
                    "label": labels[index],
                    "measured_it_per_s": measured,
                    "predicted_it_per_s": predicted,
                    "error_pct": 100.0 * (predicted / measured - 1.0),
                    "model_error_pct": answer.model_error_pct,
                }
            )
    return pd.DataFrame(rows, columns=PREDICTION_COLUMNS)


def _rows_per_machine(rows: pd.DataFrame) -> list[tuple[str, list[tuple[object, dict]]]]:
    """(machine_id, [(index, row as a dict of WORKLOAD_COLUMNS)]) in machine_id order, as a
    groupby would give them: made in one pass, since a Series or dict per group cost ~5 ms."""
    records = rows.reindex(columns=WORKLOAD_COLUMNS).to_dict("records")
    groups: dict[str, list[tuple[object, dict]]] = {}
    for index, machine, row in zip(rows.index, rows["machine_id"], records, strict=True):
        if not pd.isna(machine):  # groupby leaves rows without a key out
            groups.setdefault(machine, []).append((index, row))
    return sorted(groups.items(), key=lambda item: item[0])


WORKLOAD_COLUMNS = ["device_name", "model", "height", "width", "batch_size", "precision", "steps",
                    "attention", "compile", "cfg", "it_per_s"]  # fmt: skip


def _catalogue_gpu(device_name: str) -> GPU | None:
    from sdbench.gpus import find_gpu

    try:
        return find_gpu(device_name)
    except BadInput:
        return None


def _prediction(gpu: GPU, workload: ImageWorkload, calibration: Calibration) -> Prediction | None:
    """The reference model's answer, or None where it cannot answer (an unknown model, say)."""
    from sdbench.analysis.predict import predict

    try:
        return predict(gpu, workload, None, calibration)
    except SdbenchError:
        return None


PREDICTION_COLUMNS = [
    "machine_id",
    "machine",
    "gpu",
    "label",
    "measured_it_per_s",
    "predicted_it_per_s",
    "error_pct",
    "model_error_pct",
]


def _steps(row: dict) -> int | None:
    steps = row.get("steps")
    return None if steps is None or pd.isna(steps) else int(steps)
