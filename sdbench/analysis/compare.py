"""Compare two sets of runs cell by cell and decide, per metric, whether anything really changed.

Cells are matched by series (`machine_id`, `cell_id`: a configuration on one machine), never by
row position. Two sides that share no machine are not compared at all (`DifferentMachines`: a
hardware comparison is `sdbench.analysis.machines`); when they share some, only those machines'
cells are compared and a note names the rest.
When one side holds several runs of a series, the latest (by `started_at`, then `run_id`) is used:
pooling samples across runs would treat run-to-run drift as within-run noise and make the test
overconfident. Latency verdicts need two things to agree: a Mann-Whitney U test on the raw
samples (p < alpha) and a practical threshold on the ratio of medians. The bootstrap 95% CI of
that ratio is reported alongside. Memory changes beyond a byte threshold are always reported.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import MISSING, dataclass, field, fields

import numpy as np
import pandas as pd

from sdbench.analysis.ranktest import mann_whitney_u_p_values
from sdbench.cell import Cell
from sdbench.errors import BadInput
from sdbench.machine import (
    check_same_machines,
    ensure_machine_columns,
    latest_per_series,
    machine_names,
    runs_per_series,
    series_id,
)

MIB = 1024**2

# metric -> kind; the kind decides how a change is judged.
METRICS: dict[str, str] = {
    "median_ms": "latency",
    "peak_mem_reserved_bytes": "memory",
    "peak_rss_bytes": "memory",
    "energy_per_call_j": "energy",  # energy_j / n_samples: energy_j covers the whole timed window
    "ref_rel_err": "fidelity",
}
HARDWARE_COLUMNS = ("device_name", "cpu_model", "gpu_count")
SOFTWARE_COLUMNS = ("torch", "diffusers", "cuda", "driver", "python")
# Run settings outside the cell's configuration that move timings; older files lack them
# (null), which is "not recorded", not a difference.
SETTING_COLUMNS = ("allocator",)
FAILED = ("oom", "error", "timeout", "unsupported")
VERDICTS = ("status changed", "slower", "worse", "missing", "new", "faster", "better", "unchanged")
TABLE_COLUMNS = (
    "cell_id",
    "label",
    "metric",
    "baseline",
    "current",
    "ratio",
    "ratio_ci_low",
    "ratio_ci_high",
    "change_pct",
    "p_value",
    "test",
    "verdict",
    "regression",
    "baseline_status",
    "current_status",
    "baseline_run_id",
    "current_run_id",
    "note",
)


@dataclass(frozen=True)
class Settings:
    """How big and how certain a change must be before it is called one."""

    threshold_pct: float = 5.0  # latency: practical threshold on the ratio of medians
    alpha: float = 0.01  # latency: Mann-Whitney U two-sided significance level
    memory_threshold_bytes: int = 64 * MIB
    energy_threshold_pct: float = 10.0  # a single reading per cell, so a wider band than latency
    fidelity_threshold_pct: float = 50.0  # error growth that matters is in orders of magnitude
    fidelity_floor: float = 1e-4  # relative errors below this are all "exact enough"
    bootstrap_resamples: int = 2000


@dataclass(frozen=True)
class Comparison:
    """One row per cell x metric, what to warn about, and whether anything regressed."""

    table: pd.DataFrame
    environment_warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    settings: Settings = Settings()

    @property
    def has_regression(self) -> bool:
        return bool(self.table["regression"].any()) if len(self.table) else False

    @property
    def regressions(self) -> pd.DataFrame:
        return self.table[self.table["regression"]]

    def verdict_counts(self) -> dict[str, int]:
        """How many rows got each verdict, regressions counted apart."""
        counts = {v: int(n) for v, n in self.table["verdict"].value_counts().items()}
        counts["regression"] = int(self.table["regression"].sum())
        return counts


def compare_runs(
    baseline: pd.DataFrame,
    current: pd.DataFrame,
    threshold_pct: float = 5.0,
    *,
    alpha: float = 0.01,
    memory_threshold_bytes: int = 64 * MIB,
    energy_threshold_pct: float = 10.0,
    fidelity_threshold_pct: float = 50.0,
    metrics: Sequence[str] = tuple(METRICS),
) -> Comparison:
    """Compare the latest run of every cell in `current` with the latest in `baseline`."""
    settings = Settings(
        threshold_pct=threshold_pct,
        alpha=alpha,
        memory_threshold_bytes=memory_threshold_bytes,
        energy_threshold_pct=energy_threshold_pct,
        fidelity_threshold_pct=fidelity_threshold_pct,
    )
    _check_settings(settings, metrics)
    baseline, current, machine_note = _shared_machines(baseline, current)
    base, base_runs = latest_per_cell(baseline, "baseline")
    cur, cur_runs = latest_per_cell(current, "current")
    rows: list[dict] = []
    names = machine_names(pd.concat([base, cur], ignore_index=True)) if len(base) else {}
    base_rows, cur_rows = _records(base), _records(cur)
    latency = latency_statistics(base_rows, cur_rows, settings) if "median_ms" in metrics else {}
    for key in _ordered_union(base.index, cur.index):
        b, c = base_rows.get(key), cur_rows.get(key)
        row_of = b if b is not None else c
        cell_rows = compare_cell(str(row_of["cell_id"]), b, c, settings, metrics, latency.get(key))
        if len(names) > 1:  # the same cell on two machines: say which row is which
            for row in cell_rows:
                row["label"] += f" on {names[row_of['machine_id']]}"
        rows += cell_rows
    table = _sorted(pd.DataFrame(rows, columns=list(TABLE_COLUMNS)))
    matched = base.index.intersection(cur.index)
    warnings = environment_warnings(base.loc[matched], cur.loc[matched])
    if len(matched) == 0:  # nothing was judged: a CI check must not pass on that
        raise BadInput(
            f"No cells in common: none of the {len(base)} baseline cells is among the "
            f"{len(cur)} current cells, so nothing can be compared. Compare runs of the same "
            "suite (cells match on their configuration, device included)."
        )
    notes = [n for n in (_runs_note("baseline", base_runs), _runs_note("current", cur_runs)) if n]
    notes += [machine_note] if machine_note else []
    underpowered = (
        int(table["note"].str.contains("can never reach", regex=False).sum()) if len(table) else 0
    )
    if underpowered:
        notes.append(
            f"{underpowered} latency row(s) have too few samples for any change to be significant; "
            "raise [measure] min_repeats in the suite."
        )
    return Comparison(table=table, environment_warnings=warnings, notes=notes, settings=settings)


def _check_settings(settings: Settings, metrics: Sequence[str]) -> None:
    if not 0 <= settings.threshold_pct < 1000:
        raise BadInput(
            f"--threshold must be a percentage from 0 to 1000, got {settings.threshold_pct}."
        )
    if not 0 < settings.alpha < 1:
        raise BadInput(f"alpha must be between 0 and 1, got {settings.alpha}.")
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise BadInput(f"Unknown metric(s) {', '.join(unknown)}. Known: {', '.join(METRICS)}.")


def latest_per_cell(frame: pd.DataFrame, side: str) -> tuple[pd.DataFrame, pd.Series]:
    """The latest row of each series (indexed by `series_id`) and how many runs each had."""
    if "cell_id" not in frame or frame["cell_id"].isna().any():
        raise BadInput(
            f"The {side} results have rows without a cell_id, so their cells cannot be matched. "
            "Give files written by `sdbench run` or `sdbench ingest`."
        )
    latest = latest_per_series(frame)
    return latest.set_index(series_id(latest), drop=False), runs_per_series(frame)


def _shared_machines(
    baseline: pd.DataFrame, current: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Both sides cut to the machines they share, and a note naming any left out.

    Raises DifferentMachines when they share none: that is a hardware comparison, not a verdict.
    """
    baseline, current = ensure_machine_columns(baseline), ensure_machine_columns(current)
    if baseline.empty or current.empty:
        return baseline, current, ""
    check_same_machines(baseline, current)
    shared = set(baseline["machine_id"]) & set(current["machine_id"])
    others = (set(baseline["machine_id"]) | set(current["machine_id"])) - shared
    if not others:
        return baseline, current, ""
    names = machine_names(pd.concat([baseline, current], ignore_index=True))
    note = (
        f"only the machines both sides ran on are compared; left out: "
        f"{', '.join(sorted(names[m] for m in others))} (--across-machines compares those too)."
    )
    keep_base, keep_cur = baseline["machine_id"].isin(shared), current["machine_id"].isin(shared)
    return baseline[keep_base], current[keep_cur], note


# What judging a cell reads: its configuration (for the label), outcome and figures.
RECORD_COLUMNS = (
    *(f.name for f in fields(Cell)),
    *("cell_id", "machine_id", "run_id", "status", "error", "benchmark_name", "name"),
    *("samples_ms", "median_ms", "ci95_low_ms", "ci95_high_ms", "energy_j", "n_samples"),
    *("nonfinite", *METRICS),
)


def _records(frame: pd.DataFrame) -> dict[str, dict]:
    """Each row as a plain dict keyed by its series, with only the columns judging reads:
    a dict lookup per field instead of a pandas row per cell (10,000 cells: seconds, not minutes)."""
    columns = [c for c in dict.fromkeys(RECORD_COLUMNS) if c in frame.columns]
    values = [frame[column].tolist() for column in columns]
    return {
        key: dict(zip(columns, row, strict=True))
        for key, row in zip(frame.index.tolist(), zip(*values, strict=True), strict=True)
    }


@dataclass(frozen=True)
class LatencyStatistics:
    """One cell's latency figures from its raw samples (both sides with 2 samples or more)."""

    n_base: int
    n_current: int
    base_median_ms: float
    current_median_ms: float
    p_value: float  # two-sided Mann-Whitney U
    ratio_ci_low: float  # percentile bootstrap 95% CI of the ratio of medians
    ratio_ci_high: float


BOOTSTRAP_SEED = zlib.crc32(b"median_ms")  # fixed: the same samples always get the same CI
BOOTSTRAP_CHUNK = 512  # cells per vectorised step: 512 x 2000 resampled medians, 8 MB each


def latency_statistics(
    base_rows: dict[str, dict], cur_rows: dict[str, dict], settings: Settings
) -> dict[str, LatencyStatistics]:
    """`LatencyStatistics` of every series that finished ok on both sides with 2 samples or more.

    Cells with the same sample counts are computed together, as arrays: sorting, medians,
    Mann-Whitney tests and bootstrap. Per cell this took 43 ms at 500 samples (issue 16).
    """
    pairs = {}
    for key, base in base_rows.items():
        cur = cur_rows.get(key)
        if cur is None or base.get("status") != "ok" or cur.get("status") != "ok":
            continue
        b, c = sample_array(base), sample_array(cur)
        if len(b) >= 2 and len(c) >= 2:
            pairs[key] = (b, c)
    return sample_statistics(pairs, settings.bootstrap_resamples)


def sample_statistics(
    pairs: dict[str, tuple[np.ndarray, np.ndarray]], resamples: int = 2000
) -> dict[str, LatencyStatistics]:
    """`LatencyStatistics` of (baseline, current) sample arrays, grouped by their sizes."""
    by_sizes: dict[tuple[int, int], list[str]] = {}
    for key, (b, c) in pairs.items():
        by_sizes.setdefault((len(b), len(c)), []).append(key)
    statistics: dict[str, LatencyStatistics] = {}
    for (n_base, n_cur), keys in by_sizes.items():
        for start in range(0, len(keys), BOOTSTRAP_CHUNK):
            chunk = keys[start : start + BOOTSTRAP_CHUNK]
            base = np.sort(np.stack([pairs[key][0] for key in chunk]), axis=1)
            cur = np.sort(np.stack([pairs[key][1] for key in chunk]), axis=1)
            lows, highs = bootstrap_ratio_cis(base, cur, resamples)
            figures = zip(
                np.median(base, axis=1).tolist(),
                np.median(cur, axis=1).tolist(),
                mann_whitney_p_values(base, cur),
                lows.tolist(),
                highs.tolist(),
                strict=True,
            )
            for key, values in zip(chunk, figures, strict=True):
                statistics[key] = LatencyStatistics(n_base, n_cur, *values)
    return statistics


def mann_whitney_p_values(base: np.ndarray, cur: np.ndarray) -> list[float]:
    """Two-sided Mann-Whitney U p-value of each row of `cur` against the same row of `base`.

    scipy.stats.mannwhitneyu's p-values (method "auto"), computed without importing scipy
    (`ranktest`): samples above 8 on both sides take the asymptotic method whatever their ties;
    smaller ones take the exact method unless that pair itself has ties.
    """
    return mann_whitney_u_p_values(cur, base).tolist()


def _runs_note(side: str, runs: pd.Series) -> str:
    several = runs[runs > 1]
    if several.empty:
        return ""
    return (
        f"{side}: {len(several)} cell(s) appear in up to {int(several.max())} runs; "
        "each is compared through its latest run (by started_at)."
    )


def _ordered_union(first: pd.Index, second: pd.Index) -> list[str]:
    seen = dict.fromkeys(first)
    seen.update(dict.fromkeys(second))
    return list(seen)


def compare_cell(
    cell_id: str,
    base: pd.Series | dict | None,
    cur: pd.Series | dict | None,
    settings: Settings,
    metrics: Sequence[str],
    latency: LatencyStatistics | None = None,
) -> list[dict]:
    """The rows for one cell: a status row when it is new, missing or failing, else one per metric."""
    row_of = base if base is not None else cur
    assert row_of is not None
    common = {
        "cell_id": cell_id,
        "label": cell_label(row_of),
        "baseline_status": None if base is None else base["status"],
        "current_status": None if cur is None else cur["status"],
        "baseline_run_id": None if base is None else base["run_id"],
        "current_run_id": None if cur is None else cur["run_id"],
    }
    if base is None or cur is None:
        verdict = "new" if base is None else "missing"
        return [_row(common, metric="status", verdict=verdict, test="match")]
    if base["status"] != cur["status"]:
        regression = base["status"] == "ok"
        note = _short(cur.get("error")) if regression else ""
        return [
            _row(
                common,
                metric="status",
                verdict="status changed",
                regression=regression,
                note=note,
                test="match",
            )
        ]
    if base["status"] != "ok":
        return [
            _row(
                common,
                metric="status",
                verdict="unchanged",
                note=_short(cur.get("error")),
                test="match",
            )
        ]
    rows = []
    for metric in metrics:
        judged = judge_metric(metric, base, cur, settings, latency=latency)
        if judged is not None:
            rows.append(_row(common, metric=metric, **judged))
    return rows


def _row(common: dict, **values: object) -> dict:
    row = dict.fromkeys(TABLE_COLUMNS)
    row.update(common)
    row.update({"regression": False, "note": ""})
    row.update(values)
    return row


def _short(text: object, limit: int = 120) -> str:
    if not isinstance(text, str):
        return ""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def cell_label(row: pd.Series) -> str:
    """A short human name for a cell (`Cell.label()`), or the benchmark name it came from."""
    config = {f.name: row.get(f.name) for f in fields(Cell) if _present(row.get(f.name))}
    required = [f.name for f in fields(Cell) if f.default is MISSING]
    if all(name in config for name in required):
        for name in ("height", "width", "batch_size", "steps"):
            if name in config:
                config[name] = int(config[name])  # type: ignore[arg-type]
        return Cell.from_dict(config).label()
    for name in ("benchmark_name", "name"):
        if _present(row.get(name)):
            return str(row.get(name))
    return str(row.get("cell_id"))


def cell_labels(rows: pd.DataFrame) -> pd.Series:
    """`cell_label` per row, computed once per distinct configuration: a fleet measures the same
    few cells in thousands of rows."""
    if rows.empty:
        return pd.Series([], index=rows.index, dtype=object)
    reads = [f.name for f in fields(Cell)] + ["benchmark_name", "name", "cell_id"]
    cells = rows.groupby([c for c in reads if c in rows], dropna=False, sort=False).ngroup()
    firsts = np.flatnonzero(~cells.duplicated().to_numpy())
    names = [cell_label(row) for _, row in rows.iloc[firsts].iterrows()]
    by_cell = dict(zip(cells.iloc[firsts].tolist(), names, strict=True))
    return pd.Series([by_cell[cell] for cell in cells.tolist()], index=rows.index, dtype=object)


def _present(value: object) -> bool:
    if value is None:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return value is not pd.NA and value is not pd.NaT


def judge_metric(
    metric: str,
    base: pd.Series | dict,
    cur: pd.Series | dict,
    settings: Settings,
    latency: LatencyStatistics | None = None,
) -> dict | None:
    """Baseline, current, ratio, CI and verdict of one metric of one cell; None if neither side has it."""
    kind = METRICS[metric]
    if kind == "latency":
        return judge_latency(base, cur, settings, latency)
    b, c = _metric_value(base, metric), _metric_value(cur, metric)
    if kind == "fidelity" and _truthy(cur.get("nonfinite")) and not _truthy(base.get("nonfinite")):
        return {"baseline": b, "current": c, "verdict": "worse", "regression": True, "test": "nonfinite",
                "note": "current output contains NaN or inf"}  # fmt: skip
    if b is None and c is None:
        return None
    if b is None or c is None:
        verdict = "new" if b is None else "missing"
        return {
            "baseline": b,
            "current": c,
            "verdict": verdict,
            "test": "measured",
            "note": "measured on one side only",
        }
    if kind == "memory":
        return judge_memory(b, c, settings.memory_threshold_bytes)
    if kind == "energy":
        return judge_threshold(b, c, settings.energy_threshold_pct, floor=0.0)
    return judge_threshold(b, c, settings.fidelity_threshold_pct, floor=settings.fidelity_floor)


def _metric_value(row: pd.Series, metric: str) -> float | None:
    """A row's figure for `metric`; energy per call is derived, as energy_j depends on the repeat count."""
    if metric == "energy_per_call_j":
        energy_j, calls = _number(row.get("energy_j")), _number(row.get("n_samples"))
        return energy_j / calls if energy_j is not None and calls else None
    return _number(row.get(metric))


def _number(value: object) -> float | None:
    if not _present(value):
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else number


def _truthy(value: object) -> bool:
    return _present(value) and bool(value)


def judge_memory(base_bytes: float, cur_bytes: float, threshold_bytes: int) -> dict:
    """A memory change is reported whenever it exceeds the byte threshold; more memory is a regression."""
    delta = cur_bytes - base_bytes
    verdict = "unchanged"
    if abs(delta) >= threshold_bytes:
        verdict = "worse" if delta > 0 else "better"
    return {
        "baseline": base_bytes,
        "current": cur_bytes,
        "ratio": cur_bytes / base_bytes if base_bytes else None,
        "change_pct": 100 * delta / base_bytes if base_bytes else None,
        "verdict": verdict,
        "regression": verdict == "worse",
        "test": "byte threshold",
        "note": f"{delta / MIB:+.1f} MiB",
    }


def judge_threshold(base: float, cur: float, threshold_pct: float, floor: float) -> dict:
    """A single reading per side: only the relative change can be judged (lower is better)."""
    ratio = cur / base if base else (math.inf if cur > floor else 1.0)
    change_pct = 100 * (ratio - 1) if math.isfinite(ratio) else math.inf
    verdict = "unchanged"
    if max(base, cur) >= floor and abs(change_pct) >= threshold_pct:
        verdict = "worse" if change_pct > 0 else "better"
    return {
        "baseline": base,
        "current": cur,
        "ratio": ratio,
        "change_pct": change_pct,
        "verdict": verdict,
        "regression": verdict == "worse",
        "test": "threshold",
    }


def judge_latency(
    base: pd.Series | dict,
    cur: pd.Series | dict,
    settings: Settings,
    latency: LatencyStatistics | None = None,
) -> dict | None:
    """Slower/faster only when the samples differ significantly AND the medians differ by the
    threshold. `latency`: this cell's statistics when computed with the others' (compare_runs)."""
    if latency is None:
        b, c = sample_array(base), sample_array(cur)
        if len(b) >= 2 and len(c) >= 2:
            latency = sample_statistics({"": (b, c)}, settings.bootstrap_resamples)[""]
    if latency is not None:
        ratio = latency.current_median_ms / latency.base_median_ms
        p_value, low, high = latency.p_value, latency.ratio_ci_low, latency.ratio_ci_high
        significant, test, note = p_value < settings.alpha, "mann-whitney", ""
        values = {
            "baseline": latency.base_median_ms,
            "current": latency.current_median_ms,
            "p_value": p_value,
        }
    else:
        bm, cm = _number(base.get("median_ms")), _number(cur.get("median_ms"))
        if bm is None and cm is None:
            return None
        if bm is None or cm is None:
            return {
                "baseline": bm,
                "current": cm,
                "verdict": "new" if bm is None else "missing",
                "test": "measured",
            }
        ratio, p_value = cm / bm, None
        low, high, significant = _interval_ratio(base, cur)
        test = "ci overlap" if low is not None else "threshold only"
        note = "fewer than 2 samples on a side: no significance test"
        values = {"baseline": bm, "current": cm}
    change_pct = 100 * (ratio - 1)
    verdict = "unchanged"
    if significant and change_pct >= settings.threshold_pct:
        verdict = "slower"
    elif significant and change_pct <= -settings.threshold_pct:
        verdict = "faster"
    if (
        verdict == "unchanged"
        and abs(change_pct) >= settings.threshold_pct
        and test == "mann-whitney"
    ):
        note = f"moved {change_pct:+.1f}% but not significant (p={p_value:.2g}): noisy; take more samples"
    if (
        latency is not None
        and smallest_p_value(latency.n_base, latency.n_current) >= settings.alpha
    ):
        note = (
            f"{latency.n_base} vs {latency.n_current} samples can never reach p < {settings.alpha:g}: "
            "raise [measure] min_repeats (5 per side is the least that can reach 0.01)"
        )
    return values | {
        "ratio": ratio,
        "ratio_ci_low": low,
        "ratio_ci_high": high,
        "change_pct": change_pct,
        "verdict": verdict,
        "regression": verdict == "slower",
        "test": test,
        "note": note,
    }


def smallest_p_value(n_base: int, n_current: int) -> float:
    """The smallest two-sided Mann-Whitney p-value these sample sizes allow (complete separation)."""
    log_ways = (
        math.lgamma(n_base + n_current + 1) - math.lgamma(n_base + 1) - math.lgamma(n_current + 1)
    )
    return min(1.0, math.exp(math.log(2.0) - log_ways))  # log space: the count overflows a float


def sample_array(row: pd.Series | dict) -> np.ndarray:
    """A row's timed samples as a float array (empty when none were stored)."""
    raw = row.get("samples_ms")
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return np.empty(0)
    values = np.asarray(raw if isinstance(raw, np.ndarray) else list(raw), dtype=float)
    return values[np.isfinite(values) & (values > 0)]


def _interval_ratio(base: pd.Series, cur: pd.Series) -> tuple[float | None, float | None, bool]:
    """Ratio bounds from the stored 95% CIs of the medians; disjoint intervals count as significant."""
    bl, bh = _number(base.get("ci95_low_ms")), _number(base.get("ci95_high_ms"))
    cl, ch = _number(cur.get("ci95_low_ms")), _number(cur.get("ci95_high_ms"))
    if None in (bl, bh, cl, ch) or not bl or not bh:
        return None, None, True  # nothing but the medians: the threshold alone decides
    disjoint = cl > bh or ch < bl  # type: ignore[operator]
    return cl / bh, ch / bl, disjoint  # type: ignore[operator]


def bootstrap_ratio_ci(
    base_ms: np.ndarray,
    cur_ms: np.ndarray,
    resamples: int = 2000,
    seed: int = BOOTSTRAP_SEED,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap CI of median(current) / median(baseline), resampling each side."""
    lows, highs = bootstrap_ratio_cis(
        np.sort(base_ms)[None, :], np.sort(cur_ms)[None, :], resamples, seed, level
    )
    return float(lows[0]), float(highs[0])


def bootstrap_ratio_cis(
    base_sorted: np.ndarray,
    cur_sorted: np.ndarray,
    resamples: int = 2000,
    seed: int = BOOTSTRAP_SEED,
    level: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """`bootstrap_ratio_ci` of each row pair of two arrays of sorted samples (one cell a row).

    The rows share their random draws (common random numbers): each row's CI is what
    `bootstrap_ratio_ci` gives it alone, whichever cells are compared beside it.
    """
    rng = np.random.default_rng(seed)
    base_lower, base_upper = bootstrap_median_positions(base_sorted.shape[1], resamples, rng)
    cur_lower, cur_upper = bootstrap_median_positions(cur_sorted.shape[1], resamples, rng)
    base_medians = (base_sorted[:, base_lower] + base_sorted[:, base_upper]) / 2
    cur_medians = (cur_sorted[:, cur_lower] + cur_sorted[:, cur_upper]) / 2
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(cur_medians / base_medians, [tail, 100 - tail], axis=1)
    return low, high


def bootstrap_median_positions(
    n: int, resamples: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Where, in a sorted sample of n, the middle values of `resamples` bootstrap resamples lie
    (the same position twice for odd n), drawn exactly but without drawing the resamples.

    A resample draws n indices floor(n * U) from n uniforms U, so its k-th smallest value is
    sorted[floor(n * U_(k))], and the k-th order statistic of n uniforms is Beta(k, n + 1 - k).
    An even n needs the next one too: given U_(k) = u, U_(k+1) is u plus (1 - u) times the
    smallest of n - k uniforms, 1 - V ** (1 / (n - k)). O(resamples), whatever n: drawing n
    indices per resample cost 43 ms a cell at 500 samples (issue 16) for the same distribution.
    """
    k = (n + 1) // 2  # the median (odd n) or the lower of the middle two (even n)
    lower = rng.beta(k, n + 1 - k, resamples)
    if n % 2:
        return _index_of(lower, n), _index_of(lower, n)
    upper = lower + (1 - lower) * (1 - rng.random(resamples) ** (1 / (n - k)))
    return _index_of(lower, n), _index_of(upper, n)


def _index_of(uniform: np.ndarray, n: int) -> np.ndarray:
    return np.minimum((uniform * n).astype(np.int64), n - 1)


def _sorted(table: pd.DataFrame) -> pd.DataFrame:
    if table.empty:
        return table.astype({"regression": bool})
    order = {v: i for i, v in enumerate(VERDICTS)}
    metric_order = {m: i for i, m in enumerate(("status", *METRICS))}
    keyed = table.assign(
        _r=~table["regression"].astype(bool),
        _v=table["verdict"].map(order),
        _m=table["metric"].map(metric_order),
    )
    keyed = keyed.sort_values(["_r", "_v", "label", "_m"], kind="stable")
    result = keyed.drop(columns=["_r", "_v", "_m"]).reset_index(drop=True)
    return result.astype({"regression": bool})


def environment_warnings(base: pd.DataFrame, cur: pd.DataFrame) -> list[str]:
    """Loud warnings for every hardware or software column whose value differs between matched cells."""
    warnings = []
    for column in HARDWARE_COLUMNS + SOFTWARE_COLUMNS + SETTING_COLUMNS:
        pairs = _differing_pairs(base.get(column), cur.get(column))
        if column in SETTING_COLUMNS:
            pairs = [(pair, n) for pair, n in pairs if "(not recorded)" not in pair]
        if not pairs:
            continue
        shown = "; ".join(
            f"baseline {b} vs current {c} ({n} cell{'s' * (n > 1)})" for (b, c), n in pairs[:3]
        )
        if column == "allocator":
            warnings.append(
                f"SETTING DIFFERS (allocator): {shown}. On the CPU the tuned allocator makes "
                "steps about 20% faster, so changes below may come from it: run both sides with the "
                "same [options] allocator."
            )
        elif column in HARDWARE_COLUMNS:
            warnings.append(
                f"HARDWARE DIFFERS ({column}): {shown}. Changes below may come from the machine, not the code: "
                "compare runs made on the same hardware."
            )
        else:
            warnings.append(
                f"SOFTWARE DIFFERS ({column}): {shown}. Changes below may come from that upgrade: "
                "pin the environment, or re-run the baseline with the same versions."
            )
    return warnings


def _differing_pairs(
    base: pd.Series | None, cur: pd.Series | None
) -> list[tuple[tuple[str, str], int]]:
    if base is None or cur is None:
        return []
    counts: dict[tuple[str, str], int] = {}
    for b, c in zip(base.tolist(), cur.tolist(), strict=True):
        b_text, c_text = _env_text(b), _env_text(c)
        if b_text != c_text and not (b_text == c_text == "(not recorded)"):
            counts[(b_text, c_text)] = counts.get((b_text, c_text), 0) + 1
    return sorted(counts.items(), key=lambda item: -item[1])


def _env_text(value: object) -> str:
    if not _present(value):
        return "(not recorded)"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
