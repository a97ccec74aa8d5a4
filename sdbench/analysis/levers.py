"""What each lever (memory mode, quant scheme, step cache) buys and costs, from measured rows.

Per model and stage on one device, every lever setting is compared with the same workload and
base configuration (precision, attention, compile, ...) with every lever off: its speed-up
(ratio of medians), its peak-memory ratio (device memory on accelerators, the process's peak
RSS on a CPU) and its fidelity (relative error against the fp32 reference, and whether it
passed its tolerance). `lever_summary` then names per (device, model, stage) the setting that
wins on speed and the one that wins on memory among those whose fidelity passed.

`measured_memory_ratios` gives `predict`/`recommend` the ratios an accelerator measured, so
their "would fit with ..." remedies say what was measured rather than modelled.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sdbench.analysis.best import (
    CONFIG,
    WORKLOAD,
    CellValues,
    first_in_order,
    passes_fidelity,
    with_config_columns,
)
from sdbench.levers import LEVERS
from sdbench.levers import describe as describe_levers
from sdbench.machine import IDENTITY_COLUMNS, SERIES_KEY, latest_per_series
from sdbench.store.schema import SHAPE_COLUMNS, plain_levers, with_levers

SUMMARY_KEYS = ["machine_id", "device", *SHAPE_COLUMNS, "cfg", "steps", "precision"]
WINNER_FIGURES = ("setting", "speedup", "memory_ratio", "ref_rel_err")  # of each winning row
BASE = [name for name in CONFIG if name not in LEVERS]  # the configuration a lever adds to
COLUMNS = [
    "machine_id",
    "machine",
    "device",
    "device_name",
    *SHAPE_COLUMNS,
    "cfg",
    "steps",
    "precision",
    "setting",
    *LEVERS,
    "median_ms",
    "peak_bytes",
    "memory_source",
    "speedup",
    "memory_ratio",
    "ref_rel_err",
    "fidelity_tolerance",
    "fidelity_ok",
    "cell_id",
]


def peak_bytes(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Each row's peak memory and what it is: device memory (reserved) or, on a CPU, peak RSS."""
    device = (
        frame["peak_mem_reserved_bytes"]
        if "peak_mem_reserved_bytes" in frame
        else pd.Series(None, index=frame.index, dtype=float)
    )
    host = frame["peak_rss_bytes"] if "peak_rss_bytes" in frame else device * float("nan")
    on_cpu = frame["device"].astype(str).str.startswith("cpu")
    value = host.where(on_cpu | device.isna(), device).astype(float)
    source = pd.Series("device", index=frame.index).where(~(on_cpu | device.isna()), "host RSS")
    return value, source


def lever_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per ok cell: its setting, median, peak and fidelity, and its ratios to the same
    workload and base configuration with every lever off (null when that cell was not run)."""
    rows = latest_per_series(with_levers(with_config_columns(_lever_columns(frame))))
    if rows.empty or "median_ms" not in rows:
        return pd.DataFrame(columns=COLUMNS)
    ok = rows[(rows["status"] == "ok") & rows["median_ms"].notna()].copy()
    for name in ("channels_last", "vae", "fidelity_tolerance", "device_name", "cfg", "steps"):
        if name not in ok:
            ok[name] = None
    ok["channels_last"] = ok["channels_last"].astype("boolean").fillna(False).astype(bool)
    ok["vae"] = ok["vae"].fillna("default")
    ok["peak_bytes"], ok["memory_source"] = peak_bytes(ok)
    ok["setting"] = [
        describe_levers(m, q, c) or "none"
        for m, q, c in zip(ok["memory"], ok["quant"], ok["cache"], strict=True)
    ]
    keys = WORKLOAD + BASE
    plain = ok[plain_levers(ok)][[*keys, "median_ms", "peak_bytes"]]
    plain = plain.drop_duplicates(keys).rename(
        columns={"median_ms": "plain_median_ms", "peak_bytes": "plain_peak_bytes"}
    )
    joined = ok.merge(plain, on=keys, how="left")
    joined["speedup"] = joined["plain_median_ms"] / joined["median_ms"]
    joined["memory_ratio"] = joined["peak_bytes"] / joined["plain_peak_bytes"]
    joined["fidelity_ok"] = passes_fidelity(joined)
    return joined.reindex(columns=COLUMNS).reset_index(drop=True)


def _lever_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns lever_table reads, and those that say which series a row belongs to: taking
    the latest rows of a fleet's hundred-odd columns cost more than the whole table."""
    names = [
        *COLUMNS,
        *WORKLOAD,
        *BASE,
        *IDENTITY_COLUMNS,
        *SERIES_KEY,
        "started_at",
        "run_id",
        "status",
        "nonfinite",
        "peak_mem_reserved_bytes",
        "peak_rss_bytes",
    ]
    return frame[[name for name in dict.fromkeys(names) if name in frame]]


def lever_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (device, model, stage, size, batch, cfg, steps, precision): the lever settings that
    win on speed and on memory among those whose fidelity passed, and what each costs in fidelity.

    cfg and steps are part of the workload (a step cache buys more over 50 steps than over 20),
    as they are of lever_table's plain-cell join; rows without them (older files) are one group.
    """
    table = lever_table(frame)
    table = table[table["speedup"].notna() & (table["setting"] != "none")].reset_index(drop=True)
    if table.empty:
        return pd.DataFrame()
    # One pass for all workloads (a filter per workload cost seconds over a fleet's machines).
    grouped = table.groupby(SUMMARY_KEYS, sort=True, dropna=False)
    group = grouped.ngroup().to_numpy()
    count = int(group.max()) + 1
    passing = table["fidelity_ok"].to_numpy(dtype=bool)
    settings = np.bincount(group, minlength=count)
    failing = np.bincount(group[~passing], minlength=count)
    winners = {}
    for aspect, column, sign in (("speed", "speedup", -1.0), ("memory", "memory_ratio", 1.0)):
        # The first row holding the best value wins, as idxmax / idxmin pick it.
        values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)
        usable = passing & ~np.isnan(values)
        winners[aspect] = first_in_order(group, usable, [sign * values], count)
    cells = CellValues(table, list(WINNER_FIGURES))
    out = []
    for index, key in enumerate(grouped.size().index):
        entry = dict(zip(SUMMARY_KEYS, key, strict=True))
        entry["settings"] = int(settings[index])
        entry["failing_fidelity"] = int(failing[index])
        for aspect, position in winners.items():
            row = int(position[index])
            for name in WINNER_FIGURES:
                entry[f"{aspect}_{name}"] = None if row < 0 else cells.value(row, name)
        out.append(entry)
    return pd.DataFrame(out)


def measured_memory_ratios(
    results: pd.DataFrame | None, model: str
) -> dict[str, tuple[float, str]]:
    """Per lever setting of `model`, the median peak-memory ratio accelerators measured against
    the same cell with every lever off, and where ("measured on NVIDIA H100, 3 cells")."""
    if results is None or results.empty or "memory" not in results:
        return {}
    rows = results[results["model"] == model]
    if plain_levers(rows).all():  # no lever measured: no ratio (the table would cost ~50 ms)
        return {}
    table = lever_table(rows)
    table = table[
        ~table["device"].astype(str).str.startswith("cpu")
        & table["memory_ratio"].notna()
        & (table["setting"] != "none")
        & (table["stage"] == "pipeline")
        & table["fidelity_ok"]
    ]
    ratios = {}
    for setting, group in table.groupby("setting"):
        names = ", ".join(sorted({str(n) for n in group["device_name"].dropna()})) or "a GPU"
        cells = f"{len(group)} cell{'s' if len(group) > 1 else ''}"
        ratios[str(setting)] = (float(group["memory_ratio"].median()), f"{names}, {cells}")
    return ratios
