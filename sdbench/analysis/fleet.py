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

import pandas as pd

from sdbench.analysis.compare import cell_label
from sdbench.errors import BadInput, SdbenchError, did_you_mean
from sdbench.machine import latest_per_series, machine_names, machines_share_a_device

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
    latest = latest_per_series(frame)
    names = machine_names(latest)
    baseline = choose_baseline(latest, names, baseline_machine)
    ok = latest[(latest["status"] == "ok") & latest["median_ms"].notna()]
    shared = shared_cells(ok, names)
    machines = machine_table(latest, ok, names, baseline)
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
            "label": [cell_label(row) for _, row in rows.iterrows()],
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
    latest: pd.DataFrame, ok: pd.DataFrame, names: dict[str, str], baseline: str
) -> pd.DataFrame:
    """One row per machine: what it is, how many cells it ran, its speed against the baseline."""
    base = ok[ok["machine_id"] == baseline].set_index("cell_id")["median_ms"]
    rows = []
    for machine, group in latest.groupby("machine_id", sort=False):
        first = group.iloc[0]
        mine = ok[ok["machine_id"] == machine].set_index("cell_id")["median_ms"]
        common = base.index.intersection(mine.index)
        ratios = (base[common] / mine[common]).astype(float) if len(common) else pd.Series()
        rows.append(
            {
                "machine_id": machine,
                "machine": names[machine],
                "baseline": machine == baseline,
                **{name: first.get(name) for name in IDENTITY_SHOWN},
                "runs": group["run_id"].nunique(),
                "cells": len(group),
                "ok": int((group["status"] == "ok").sum()),
                "shared_with_baseline": len(common),
                "relative_speed": _geomean(ratios),
                "relative_speed_min": float(ratios.min()) if len(ratios) else None,
                "relative_speed_max": float(ratios.max()) if len(ratios) else None,
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
    from sdbench.analysis.predict import predict
    from sdbench.analysis.workload import ImageWorkload
    from sdbench.gpus import find_gpu

    unet = ok[(ok["stage"] == "unet") & ok["it_per_s"].notna()]
    calibration = reference_calibration()
    rows = []
    for machine, group in unet.groupby("machine_id", sort=True):
        try:
            gpu = find_gpu(str(group["device_name"].iloc[0]))
        except BadInput:
            continue  # not a catalogue GPU (a CPU, or a card the catalogue lacks)
        for _, row in group.iterrows():
            try:
                workload = ImageWorkload.usual(
                    str(row["model"]), int(row["height"]), int(row["width"]), int(row["batch_size"]),
                    str(row["precision"]), _steps(row), str(row["attention"]), str(row["compile"]),
                    cfg=bool(row["cfg"]) if pd.notna(row.get("cfg")) else None,
                )  # fmt: skip
                answer = predict(gpu, workload, None, calibration)
            except SdbenchError:
                continue  # the model cannot answer for this cell (an unknown model, say)
            measured, predicted = float(row["it_per_s"]), answer.it_per_s
            rows.append(
                {
                    "machine_id": machine,
                    "machine": names[machine],
                    "gpu": gpu.name,
                    "label": cell_label(row),
                    "measured_it_per_s": measured,
                    "predicted_it_per_s": predicted,
                    "error_pct": 100.0 * (predicted / measured - 1.0),
                    "model_error_pct": answer.model_error_pct,
                }
            )
    return pd.DataFrame(rows, columns=PREDICTION_COLUMNS)


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


def _steps(row: pd.Series) -> int | None:
    steps = row.get("steps")
    return None if steps is None or pd.isna(steps) else int(steps)
