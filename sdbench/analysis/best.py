"""The fastest configuration per workload whose fidelity passes, and its speed-up over the plain default.

A workload is one (machine, device, model, stage, height, width, batch_size, cfg, steps): the
same work done per call on one machine, so per-call medians of its configurations compare
directly. Two machines running the same cells are two workloads, never one. A configuration is
the rest (precision, attention, compile, channels_last, vae, and the levers memory, quant, cache).

Fidelity rule: a row is a candidate when its status is ok, it has a median, `nonfinite` is not
true, and `fidelity_ok` is true *or null*. Null means fidelity was not measured for that row (the
reference configuration itself, or a run without a reference); such rows compete, and the result
carries `fidelity_checked = False` so a reader sees it. Pass `require_fidelity=True` to accept only
rows whose fidelity was measured and passed.

The plain default a speed-up is measured against: attention sdpa, compile none, no channels_last,
default VAE, every lever off, precision fp32 on CPU and fp16 on other devices (bf16 when no ok fp16 row exists).

When a series (same `machine_id` and `cell_id`) appears in several runs, only its latest run
counts (`sdbench.machine.latest_per_series`).

Noise rule: cells `analysis.outliers` flags (too noisy, or slower than a neighbour that does more
work) neither win nor serve as the default, so no speed-up rests on them; `outliers` counts them
per workload. Each speed-up carries a 95% CI (bootstrap of the ratio of medians over the two
cells' samples, as `compare` computes it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sdbench.analysis.compare import bootstrap_ratio_cis, sample_array
from sdbench.analysis.outliers import flag_outliers, is_outlier
from sdbench.devices.device import device_kind
from sdbench.levers import LEVERS
from sdbench.machine import latest_per_series
from sdbench.store.schema import SHAPE_COLUMNS, plain_levers, with_levers

WORKLOAD = ["machine_id", "device", *SHAPE_COLUMNS, "cfg", "steps"]
CONFIG = ["precision", "attention", "compile", "channels_last", "vae", *LEVERS]
RESULT_COLUMNS = [
    *WORKLOAD,
    "machine",
    "device_name",
    *CONFIG,
    "median_ms",
    "ci95_low_ms",
    "ci95_high_ms",
    "it_per_s",
    "images_per_s",
    "fidelity_ok",
    "fidelity_checked",
    "ref_rel_err",
    "default_precision",
    "default_median_ms",
    "speedup",
    "speedup_ci95_low",
    "speedup_ci95_high",
    "candidates",
    "rejected_fidelity",
    "not_ok",
    "outliers",
    "run_id",
    "cell_id",
    "reason",
]
RESULT_SOURCES = ["machine", "device_name", "fidelity_ok", "outlier_reason"]  # read, not copied
BEST_FIGURES = [  # the winning row's own figures, copied into its workload's result
    "median_ms",
    "ci95_low_ms",
    "ci95_high_ms",
    "it_per_s",
    "images_per_s",
    "run_id",
    "cell_id",
    "ref_rel_err",
]
READ_COLUMNS = [*WORKLOAD, *CONFIG, *BEST_FIGURES, *RESULT_SOURCES]


def passes_fidelity(frame: pd.DataFrame, require_fidelity: bool = False) -> pd.Series:
    """True where a row's numerics are acceptable under the module's fidelity rule."""
    nonfinite = frame["nonfinite"].astype("boolean").fillna(False)
    fidelity = frame["fidelity_ok"].astype("boolean")
    accepted = fidelity.fillna(not require_fidelity)
    return (accepted & ~nonfinite).astype(bool)


def is_plain_default(frame: pd.DataFrame) -> pd.Series:
    """True for rows with the plain default knobs, any precision (precision is chosen per device)."""
    channels_last = frame["channels_last"].astype("boolean").fillna(False)
    vae = frame["vae"].fillna("default")
    return (
        (frame["attention"] == "sdpa")
        & (frame["compile"] == "none")
        & ~channels_last
        & (vae == "default")
        & plain_levers(frame)
    ).astype(bool)


def default_precision(device: str, ok_precisions: set[str]) -> str:
    """fp32 on CPU; fp16 elsewhere, or bf16 when only bf16 ran ok."""
    if device_kind(str(device)) == "cpu":
        return "fp32"
    if "fp16" not in ok_precisions and "bf16" in ok_precisions:
        return "bf16"
    return "fp16"


def fastest_settings(
    frame: pd.DataFrame, require_fidelity: bool = False, flagged: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per workload: its fastest passing configuration and the speed-up over the default.

    Workloads where nothing passes keep a row with null configuration and a `reason`. `flagged`
    is `flag_latest(frame)` when the caller has it already (the report flags once).
    """
    # Ingested pytest benchmarks that are not sdbench cells have no configuration to rank.
    rows = flag_latest(frame[frame["model"].notna()]) if flagged is None else flagged
    rows = rows[rows["model"].notna()]
    if rows.empty:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    rows = only_columns(rows, [*READ_COLUMNS, "status", "nonfinite", "samples_ms"])
    # One pass over the whole table finds every workload's counts, default and winner at once:
    # a pandas filter per workload cost seconds on a fleet of a hundred machines.
    picks = _WorkloadPicks.of(rows, require_fidelity)
    cells = CellValues(rows, READ_COLUMNS)
    results = [_workload_result(picks, cells, i, require_fidelity) for i in range(picks.count)]
    _add_speedups(results, rows, picks)
    return pd.DataFrame(results, columns=RESULT_COLUMNS).reset_index(drop=True)


def only_columns(rows: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Those of `names` that `rows` has, indexed from 0: a fleet's table has a hundred columns
    more, and each copy of them that an analysis step makes shows."""
    return rows[[name for name in dict.fromkeys(names) if name in rows]].reset_index(drop=True)


def flag_latest(frame: pd.DataFrame) -> pd.DataFrame:
    """The latest row of each series, config columns filled in, with `outliers.flag_outliers`'
    `outlier_reason`: what best, precision gains, the answers and the report's outlier list read."""
    return flag_outliers(latest_per_series(with_config_columns(frame)))


def with_config_columns(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for name in (
        "channels_last",
        "vae",
        "nonfinite",
        "fidelity_ok",
        "ref_rel_err",
        "started_at",
        "run_id",
    ):
        if name not in frame:
            frame[name] = None
    return with_levers(frame)


@dataclass(frozen=True)
class _WorkloadPicks:
    """Per workload (in `groupby(WORKLOAD, sort=True)` order): row counts, and the positions in
    `rows` of its first row, its plain default and its fastest passing row (-1: none)."""

    total: np.ndarray
    ok: np.ndarray
    passing: np.ndarray
    rejected_fidelity: np.ndarray
    outliers: np.ndarray
    first: np.ndarray
    default: np.ndarray
    best: np.ndarray
    default_precision: list[str]

    @property
    def count(self) -> int:
        return len(self.total)

    @classmethod
    def of(cls, rows: pd.DataFrame, require_fidelity: bool) -> _WorkloadPicks:
        workload = rows.groupby(WORKLOAD, dropna=False, sort=True).ngroup().to_numpy()
        count = int(workload.max()) + 1
        ok = ((rows["status"] == "ok") & rows["median_ms"].notna()).to_numpy(dtype=bool)
        flagged = ok & is_outlier(rows).to_numpy(dtype=bool)
        fidelity = passes_fidelity(rows, require_fidelity).to_numpy(dtype=bool)
        passing = ok & fidelity & ~flagged
        first = np.unique(workload, return_index=True)[1]
        precisions = _default_precisions(rows, workload, ok, first)
        median = pd.to_numeric(rows["median_ms"], errors="coerce").to_numpy(dtype=float)
        plain = (
            ok
            & is_plain_default(rows).to_numpy(dtype=bool)
            & (rows["precision"].to_numpy(dtype=object) == np.array(precisions, object)[workload])
        )
        high = pd.to_numeric(rows["ci95_high_ms"], errors="coerce").to_numpy(dtype=float)
        return cls(
            total=np.bincount(workload, minlength=count),
            ok=np.bincount(workload[ok], minlength=count),
            passing=np.bincount(workload[passing], minlength=count),
            rejected_fidelity=np.bincount(workload[ok & ~fidelity], minlength=count),
            outliers=np.bincount(workload[flagged], minlength=count),
            first=first,
            default=first_in_order(workload, plain, [median], count),
            best=first_in_order(workload, passing, [median, high], count),
            default_precision=precisions,
        )


def _default_precisions(
    rows: pd.DataFrame, workload: np.ndarray, ok: np.ndarray, first: np.ndarray
) -> list[str]:
    """`default_precision` of each workload, from its device and the precisions that ran ok."""
    count = len(first)
    precision = rows["precision"].to_numpy(dtype=object)
    ran = {
        name: np.bincount(workload[ok & (precision == name)], minlength=count) > 0
        for name in ("fp16", "bf16")
    }
    devices = rows["device"].to_numpy(dtype=object)[first]
    return [
        default_precision(devices[i], {name for name, seen in ran.items() if seen[i]})
        for i in range(count)
    ]


def first_in_order(
    workload: np.ndarray, mask: np.ndarray, keys: list[np.ndarray], count: int
) -> np.ndarray:
    """Per workload, the position of its first row under `mask` when sorted by `keys` (nulls
    last; ties keep the table's order, as a stable sort does), or -1 when none is under it."""
    positions = np.flatnonzero(mask)
    order = np.lexsort([key[positions] for key in reversed(keys)] + [workload[positions]])
    positions = positions[order]
    owners = workload[positions]
    leads = np.ones(len(positions), dtype=bool)
    leads[1:] = owners[1:] != owners[:-1]
    chosen = np.full(count, -1)
    chosen[owners[leads]] = positions[leads]
    return chosen


class CellValues:
    """Cells of `rows` read as `rows.iloc[position][column]` reads them, without building a row."""

    def __init__(self, rows: pd.DataFrame, columns: list[str]) -> None:
        self._columns = {
            name: _readable(rows[name]) for name in dict.fromkeys(columns) if name in rows
        }

    def get(self, position: int, names: Iterable[str]) -> dict:
        return {name: self._columns[name][position] for name in names}

    def value(self, position: int, name: str, default=None):
        return self._columns[name][position] if name in self._columns else default


def _readable(column: pd.Series):
    """The column as an array whose items are what `iloc` gives: numpy scalars from numpy
    columns, str or NaN from string columns (read from Arrow once, not one cell at a time)."""
    if isinstance(column.dtype, np.dtype):
        return column.to_numpy()
    if isinstance(column.dtype, pd.StringDtype) and column.dtype.na_value is np.nan:
        return column.to_numpy(dtype=object)
    return column.array


def _workload_result(picks: _WorkloadPicks, cells: CellValues, i: int, require: bool) -> dict:
    first = int(picks.first[i])
    result = cells.get(first, WORKLOAD)
    result |= {
        "machine": cells.value(first, "machine"),
        "device_name": cells.value(first, "device_name"),
        "candidates": int(picks.passing[i]),
        "rejected_fidelity": int(picks.rejected_fidelity[i]),
        "not_ok": int(picks.total[i] - picks.ok[i]),
        "outliers": int(picks.outliers[i]),
        "default_precision": picks.default_precision[i],
    }
    default = int(picks.default[i])
    result["default_median_ms"] = None if default < 0 else float(cells.value(default, "median_ms"))
    if picks.best[i] < 0:
        result["reason"] = _no_candidate_reason(int(picks.total[i]), int(picks.ok[i]), require)
        return result
    best = int(picks.best[i])
    result |= cells.get(best, [*CONFIG, *BEST_FIGURES])
    fidelity_ok = cells.value(best, "fidelity_ok")
    result["fidelity_ok"] = None if pd.isna(fidelity_ok) else bool(fidelity_ok)
    result["fidelity_checked"] = result["fidelity_ok"] is not None
    reason = None if default < 0 else cells.value(default, "outlier_reason")
    if reason is not None:
        result["reason"] = f"no speed-up claimed: the default cell is flagged ({reason})"
    return result


def _add_speedups(results: list[dict], rows: pd.DataFrame, picks: _WorkloadPicks) -> None:
    """Each workload's speed-up, median(default) / median(winner), with the 95% bootstrap CI of
    that ratio over both cells' samples (as `compare` computes it), drawn for all workloads with
    the same sample counts at once: the same CIs as one at a time, in a fraction of the time."""
    median = rows["median_ms"].to_numpy()
    samples = rows["samples_ms"].to_numpy(dtype=object) if "samples_ms" in rows else None
    by_counts: dict[tuple[int, int], list[tuple[int, np.ndarray, np.ndarray]]] = {}
    for i, result in enumerate(results):
        default, best = int(picks.default[i]), int(picks.best[i])
        if default < 0 or best < 0 or "reason" in result:
            continue
        result |= {
            "speedup": float(median[default]) / float(median[best]),
            "speedup_ci95_low": None,
            "speedup_ci95_high": None,
        }
        base, current = (
            sample_array({"samples_ms": None if samples is None else samples[position]})
            for position in (best, default)
        )
        if len(base) >= 2 and len(current) >= 2:
            by_counts.setdefault((len(base), len(current)), []).append((i, base, current))
    for cells in by_counts.values():
        lows, highs = bootstrap_ratio_cis(
            np.sort(np.stack([base for _, base, _ in cells])),
            np.sort(np.stack([current for _, _, current in cells])),
        )
        for (i, _, _), low, high in zip(cells, lows, highs, strict=True):
            results[i] |= {"speedup_ci95_low": float(low), "speedup_ci95_high": float(high)}


def default_row(ok: pd.DataFrame, device: str) -> pd.Series | None:
    """The plain-default cell, flagged or not: a flagged default withholds the claim rather than
    quietly measuring against a different, less plain baseline."""
    precision = default_precision(device, set(ok["precision"]))
    plain = ok[is_plain_default(ok) & (ok["precision"] == precision)]
    if plain.empty:
        return None
    return plain.sort_values("median_ms", kind="stable").iloc[0]


def _no_candidate_reason(total: int, ok: int, require_fidelity: bool) -> str:
    if ok == 0:
        return f"none of {total} configurations finished ok"
    rule = (
        "fidelity not measured or failed"
        if require_fidelity
        else "fidelity failed or non-finite output"
    )
    return f"all {ok} ok configurations rejected ({rule})"


def compile_gains(frame: pd.DataFrame) -> pd.DataFrame:
    """Per compiled ok row: its compile time and speed-up over the same configuration uncompiled."""
    rows = latest_per_series(with_config_columns(frame))
    ok = rows[(rows["status"] == "ok") & rows["median_ms"].notna()]
    keys = [*WORKLOAD, "precision", "attention", "channels_last", "vae", *LEVERS]
    ok = _fill_keys(ok)
    compiled = ok[ok["compile"] != "none"]
    eager = ok[ok["compile"] == "none"][[*keys, "median_ms"]].rename(
        columns={"median_ms": "eager_median_ms"}
    )
    joined = compiled.merge(eager, on=keys, how="inner")
    joined["speedup"] = joined["eager_median_ms"] / joined["median_ms"]
    columns = [*keys, "compile", "compile_s", "median_ms", "eager_median_ms", "speedup", "cell_id"]
    return joined.reindex(columns=columns).reset_index(drop=True)  # compile_s may be absent


def _fill_keys(frame: pd.DataFrame) -> pd.DataFrame:
    # Merging on nullable keys needs equal sentinels on both sides: NaN never equals NaN.
    frame = frame.copy()
    frame["channels_last"] = frame["channels_last"].astype("boolean").fillna(False).astype(bool)
    frame["vae"] = frame["vae"].fillna("default")
    return with_levers(frame)
