"""Results from several machines: what differs between them, and a hardware comparison per cell.

A regression verdict needs both sides measured on one machine; between machines the question is
"how much faster is this one?", answered per shared cell with the ratio of medians and its 95%
bootstrap CI (the same estimator `compare` uses), peak memory and energy per image.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from sdbench.analysis.compare import (
    _interval_ratio,
    _number,
    bootstrap_ratio_ci,
    cell_label,
    sample_array,
)
from sdbench.machine import latest_per_series, machine_names

HARDWARE_COLUMNS = [
    "cell_id",
    "label",
    "baseline_machine",
    "current_machine",
    "baseline_status",
    "current_status",
    "baseline_ms",
    "current_ms",
    "ratio",
    "ratio_ci_low",
    "ratio_ci_high",
    "speedup",
    "ci_method",
    "baseline_memory_bytes",
    "current_memory_bytes",
    "baseline_energy_per_image_j",
    "current_energy_per_image_j",
    "baseline_run_id",
    "current_run_id",
]


def compare_machines(
    baseline: pd.DataFrame, current: pd.DataFrame, resamples: int = 2000
) -> pd.DataFrame:
    """One row per cell both sides ran and per (baseline machine, current machine) pair.

    `ratio` is current median / baseline median (below 1: current is faster), its CI a
    percentile bootstrap of the raw samples, or the stored CIs' bounds when a side kept fewer
    than two samples. `speedup` is its inverse.
    """
    base, cur = latest_per_series(baseline), latest_per_series(current)
    names = machine_names(pd.concat([base, cur], ignore_index=True))
    shared = list(dict.fromkeys(c for c in base["cell_id"] if c in set(cur["cell_id"])))
    by_cell_base = dict(tuple(base.groupby("cell_id", sort=False)))
    by_cell_cur = dict(tuple(cur.groupby("cell_id", sort=False)))
    rows = []
    for cell_id in shared:
        for _, b in by_cell_base[cell_id].iterrows():
            for _, c in by_cell_cur[cell_id].iterrows():
                rows.append(_hardware_row(b, c, names, resamples))
    table = pd.DataFrame(rows, columns=HARDWARE_COLUMNS)
    return table.sort_values(["label", "baseline_machine", "current_machine"], kind="stable")


def _hardware_row(b: pd.Series, c: pd.Series, names: dict[str, str], resamples: int) -> dict:
    row = {
        "cell_id": b["cell_id"],
        "label": cell_label(b),
        "baseline_machine": names[b["machine_id"]],
        "current_machine": names[c["machine_id"]],
        "baseline_status": b["status"],
        "current_status": c["status"],
        "baseline_run_id": b["run_id"],
        "current_run_id": c["run_id"],
        "baseline_memory_bytes": peak_memory(b),
        "current_memory_bytes": peak_memory(c),
        "baseline_energy_per_image_j": _number(b.get("energy_per_image_j")),
        "current_energy_per_image_j": _number(c.get("energy_per_image_j")),
    }
    bm, cm = _number(b.get("median_ms")), _number(c.get("median_ms"))
    if b["status"] != "ok" or c["status"] != "ok" or not bm or not cm:
        return row
    row |= {"baseline_ms": bm, "current_ms": cm, "ratio": cm / bm, "speedup": bm / cm}
    base_samples, cur_samples = sample_array(b), sample_array(c)
    if len(base_samples) >= 2 and len(cur_samples) >= 2:
        seed = zlib.crc32(f"{b['cell_id']}/{b['machine_id']}/{c['machine_id']}".encode())
        low, high = bootstrap_ratio_ci(base_samples, cur_samples, resamples, seed)
        row |= {"ratio_ci_low": low, "ratio_ci_high": high, "ci_method": "bootstrap"}
        row |= {"ratio": float(np.median(cur_samples) / np.median(base_samples))}
        row["speedup"] = 1.0 / row["ratio"]
    else:
        low, high, _ = _interval_ratio(b, c)
        row |= {"ratio_ci_low": low, "ratio_ci_high": high, "ci_method": "stored CIs"}
    return row


def peak_memory(row: pd.Series) -> float | None:
    """The device's reserved peak (GPUs), else the process's resident peak (CPU)."""
    return _number(row.get("peak_mem_reserved_bytes")) or _number(row.get("peak_rss_bytes"))
