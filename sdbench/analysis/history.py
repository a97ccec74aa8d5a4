"""Find the runs where a cell's metric stepped to a new level, across many runs ordered by time.

Step detection is an exact optimal partition (the Potts model that asv's `step_detect.py` also
solves) with an L1 cost: each segment costs the sum of absolute deviations from its median, and
each step costs a penalty proportional to the noise level, so single outliers do not make steps.
The noise level is estimated robustly from run-to-run differences (MAD). Steps smaller than a
practical threshold are merged away, as in `compare`.

A series is one cell on one machine (`machine_id`, `cell_id`): a cell measured on another host or
GPU starts a series of its own, so a change of machine is never reported as a performance step.
"""

from __future__ import annotations

import heapq
import math
import statistics
from collections.abc import Sequence

import numpy as np
import pandas as pd

from sdbench.analysis.compare import cell_labels
from sdbench.errors import BadInput
from sdbench.machine import ensure_machine_columns, machine_names

# A point of a series: which cell on which machine, in which run.
POINT_COLUMNS = ("series_id", "machine_id", "machine", "cell_id", "label", "run_id", "started_at")
CHANGE_COLUMNS = (*POINT_COLUMNS, "before", "after", "change_pct", "runs_before", "runs_after")
SERIES_COLUMNS = (*POINT_COLUMNS, "value")


def cell_series(frame: pd.DataFrame, metric: str = "median_ms") -> pd.DataFrame:
    """One value per (series, run) of the cells that finished ok, ordered by series then time.

    Labels name the machine too when the results hold more than one.
    """
    if metric not in frame.columns:
        raise BadInput(
            f'No column "{metric}" in these results. Use a numeric column such as median_ms.'
        )
    ok = frame[frame["status"] == "ok"] if "status" in frame else frame
    ok = ensure_machine_columns(ok)
    names = machine_names(ok) if len(ok) else {}
    labels = cell_labels(ok).tolist()
    if len(names) > 1:
        labels = [
            f"{label} on {names[m]}" for label, m in zip(labels, ok["machine_id"], strict=True)
        ]
    values = pd.to_numeric(ok[metric], errors="coerce")
    if values.notna().sum() == 0 and len(ok) and ok[metric].notna().any():
        raise BadInput(f'Column "{metric}" is not numeric. Use a numeric column such as median_ms.')
    series = pd.DataFrame(
        {
            "series_id": ok["machine_id"].astype(str) + "/" + ok["cell_id"].astype(str),
            "machine_id": ok["machine_id"],
            "machine": ok["machine_id"].map(names),
            "cell_id": ok["cell_id"],
            "label": labels,
            "run_id": ok["run_id"],
            "started_at": pd.to_datetime(ok["started_at"], utc=True),
            "value": values.astype(float),
        }
    )
    series = series[series["value"].notna() & series["cell_id"].notna()]
    series = series.sort_values(["series_id", "started_at", "run_id"], kind="stable")
    series = series.drop_duplicates(["series_id", "run_id"], keep="last")
    return series.reset_index(drop=True)[list(SERIES_COLUMNS)]


def change_points(
    frame: pd.DataFrame,
    metric: str = "median_ms",
    min_change_pct: float = 5.0,
    penalty_factor: float = 4.0,
    min_size: int = 2,
) -> pd.DataFrame:
    """The runs at which each series' metric stepped, with the levels before and after the step."""
    series = cell_series(frame, metric)
    columns = {name: series[name].tolist() for name in POINT_COLUMNS}
    values = series["value"].to_numpy(float)
    rows = []
    for first, last in _series_bounds(series["series_id"]):
        for start, before, after in detect_steps(
            values[first:last], min_change_pct, penalty_factor, min_size
        ):
            rows.append(
                {
                    **{name: column[first + start] for name, column in columns.items()},
                    "before": before.level,
                    "after": after.level,
                    "change_pct": 100 * (after.level / before.level - 1)
                    if before.level
                    else math.inf,
                    "runs_before": before.runs,
                    "runs_after": after.runs,
                }
            )
    result = pd.DataFrame(rows, columns=list(CHANGE_COLUMNS))
    return result.sort_values(["started_at", "label"], kind="stable").reset_index(drop=True)


def _series_bounds(series_ids: pd.Series) -> list[tuple[int, int]]:
    """(first, end) positions of each series in `cell_series`' output, which keeps a series together."""
    ids = series_ids.to_numpy(dtype=object)
    starts = [0, *(np.flatnonzero(ids[1:] != ids[:-1]) + 1).tolist()] if len(ids) else []
    return list(zip(starts, [*starts[1:], len(ids)], strict=True))


def _median(values: np.ndarray) -> float:
    """np.median's value (the middle one, or the two middle ones' sum over 2) without its
    overhead: a series has a handful of runs, and a fleet's history takes thousands of medians."""
    return float(statistics.median(values.tolist()))


class Segment:
    """A run of consecutive values at one level (their median)."""

    def __init__(self, values: np.ndarray):
        self.level = _median(values)
        self.runs = len(values)


def detect_steps(
    values: Sequence[float],
    min_change_pct: float = 5.0,
    penalty_factor: float = 4.0,
    min_size: int = 2,
) -> list[tuple[int, Segment, Segment]]:
    """(index where the new level starts, segment before, segment after) for every kept step."""
    y = np.asarray(values, dtype=float)
    if len(y) < 2 * min_size:
        return []
    penalty = penalty_factor * noise_scale(y) * math.log(len(y))
    starts = optimal_partition(y, penalty, min_size)
    starts = _merge_small_steps(y, starts, min_change_pct)
    bounds = [0, *starts, len(y)]
    segments = [Segment(y[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return [(start, segments[i], segments[i + 1]) for i, start in enumerate(starts)]


def noise_scale(y: np.ndarray) -> float:
    """Robust standard deviation of the noise, from the MAD of successive differences.

    Differences cancel slow levels and a step touches only one of them, so the estimate ignores
    steps. A floor of 0.1% of the typical level keeps perfectly steady series from splitting on
    rounding.
    """
    diffs = np.diff(y)
    mad = _median(np.abs(diffs - _median(diffs))) if len(diffs) else 0.0
    sigma = 1.4826 * mad / math.sqrt(2)
    return max(sigma, 1e-3 * _median(np.abs(y)), 1e-12)


def optimal_partition(y: np.ndarray, penalty: float, min_size: int = 2) -> list[int]:
    """Exact minimiser of sum(L1 cost of each segment) + penalty x steps; returns segment starts.

    Dynamic programming over the end of the last segment, O(n^2 log n): for each end t, segments
    [s, t) are grown backwards one value at a time with a running median (two heaps).
    """
    n = len(y)
    best = np.full(n + 1, math.inf)
    best[0] = -penalty
    previous = np.zeros(n + 1, dtype=int)
    for end in range(min_size, n + 1):
        median = RunningMedian()
        for start in range(end - 1, -1, -1):
            median.add(float(y[start]))
            if end - start < min_size or (0 < start < min_size):
                continue
            total = best[start] + median.abs_deviation() + penalty
            if total < best[end]:
                best[end], previous[end] = total, start
    starts, end = [], n
    while end > 0:
        end = int(previous[end])
        if end > 0:
            starts.append(end)
    return sorted(starts)


class RunningMedian:
    """Sum of absolute deviations from the median of a growing set, O(log n) per value."""

    def __init__(self) -> None:
        self.low: list[float] = []  # max-heap (negated): the smaller half, holds the median
        self.high: list[float] = []  # min-heap: the larger half
        self.low_sum = 0.0
        self.high_sum = 0.0

    def add(self, value: float) -> None:
        if self.low and value > -self.low[0]:
            heapq.heappush(self.high, value)
            self.high_sum += value
        else:
            heapq.heappush(self.low, -value)
            self.low_sum += value
        if len(self.low) > len(self.high) + 1:
            moved = -heapq.heappop(self.low)
            self.low_sum -= moved
            heapq.heappush(self.high, moved)
            self.high_sum += moved
        elif len(self.high) > len(self.low):
            moved = heapq.heappop(self.high)
            self.high_sum -= moved
            heapq.heappush(self.low, -moved)
            self.low_sum += moved

    def abs_deviation(self) -> float:
        median = -self.low[0]
        return (self.high_sum - median * len(self.high)) + (median * len(self.low) - self.low_sum)


def _merge_small_steps(y: np.ndarray, starts: list[int], min_change_pct: float) -> list[int]:
    """Drop the smallest step below the threshold and re-level, until every step is big enough."""
    starts = list(starts)
    while starts:
        bounds = [0, *starts, len(y)]
        levels = [_median(y[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        changes = [
            abs(after / before - 1) * 100 if before else math.inf
            for before, after in zip(levels, levels[1:], strict=False)
        ]
        smallest = int(np.argmin(changes))
        if changes[smallest] >= min_change_pct:
            break
        starts.pop(smallest)
    return starts
