""" "Is bf16/fp16 worth it here?": per stage, each reduced precision against fp32, with a CI and fidelity.

A pair is two ok cells that differ only in precision (same device, model, stage, size, batch,
guidance, attention, compile and VAE). Per (device, model, stage, precision) the speed-up is the
geometric mean over its pairs of median(fp32) / median(precision), its 95% CI a percentile
bootstrap that resamples every cell's own samples. Cells `analysis.outliers` flags never form a
pair. The fidelity verdict is over the reduced-precision cells of the pairs: `pass` when every one
was checked and passed, `fail` when any failed or gave NaN/inf, `not measured` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sdbench.analysis.best import (
    CONFIG,
    WORKLOAD,
    CellValues,
    flag_latest,
    only_columns,
)
from sdbench.analysis.compare import sample_array
from sdbench.analysis.outliers import is_outlier

BASELINE = "fp32"
GROUP = ["machine_id", "device", "model", "stage"]  # one machine's pairs never mix with another's
PAIR_KEYS = [*WORKLOAD, *(name for name in CONFIG if name != "precision")]
COLUMNS = [
    *GROUP,
    "machine",
    "device_name",
    "precision",
    "baseline",
    "pairs",
    "speedup",
    "speedup_ci95_low",
    "speedup_ci95_high",
    "fidelity",
    "max_ref_rel_err",
    "outliers",
    "verdict",
]
PAIR_FIGURES = ["median_ms", "samples_ms", "fidelity_ok", "nonfinite", "ref_rel_err"]
ROW_FACTS = ["precision", "machine", "device_name", "status", "error", "outlier_reason"]
RESAMPLES = 2000


def precision_gains(
    frame: pd.DataFrame, seed: int = 0, flagged: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per (device, model, stage, reduced precision): speed-up over fp32, CI, fidelity.

    `flagged` is `best.flag_latest(frame)` when the caller has it already (the report flags once).
    """
    # Ingested pytest benchmarks that are not sdbench cells have no precision to compare.
    rows = flag_latest(frame[frame["model"].notna()]) if flagged is None else flagged
    rows = rows[rows["model"].notna()]
    if rows.empty:
        return pd.DataFrame(columns=COLUMNS)
    rows = only_columns(rows, [*PAIR_KEYS, *PAIR_FIGURES, *ROW_FACTS])
    rows = rows.assign(
        channels_last=rows["channels_last"].astype("boolean").fillna(False).astype(bool),
        vae=rows["vae"].fillna("default"),
        _group=rows.groupby(GROUP, dropna=False, sort=True).ngroup(),
    )
    # One pass over the table for all groups (a filter and a merge per group cost seconds on a
    # fleet): each comparison's rows, its flagged cells, and one merge that pairs them all.
    group = rows["_group"].to_numpy()
    precision = rows["precision"].to_numpy(dtype=object)
    flagged = ((rows["status"] == "ok") & rows["median_ms"].notna() & is_outlier(rows)).to_numpy(
        dtype=bool
    )
    baseline_flagged = np.bincount(
        group[flagged & (precision == BASELINE)], minlength=group.max() + 1
    )
    pairs = _Pairs.of(rows)
    cells = CellValues(rows, [*GROUP, "machine", "device_name", "status", "error"])
    group_first = np.unique(group, return_index=True)[1]
    results = []
    for (group_id, reduced), tried in _comparisons(group, precision).items():
        outliers = int(baseline_flagged[group_id] + flagged[tried].sum())
        first = int(group_first[group_id])
        result = cells.get(first, [*GROUP, "machine"]) | {
            "device_name": cells.value(first, "device_name"),
            "precision": reduced,
            "baseline": BASELINE,
            "outliers": outliers,
        }
        paired = pairs.of_comparison.get((group_id, reduced), [])
        if not paired:
            reason = _no_pair_reason(cells, tried, outliers)
            results.append(result | {"pairs": 0, "verdict": reason})
        else:
            results.append(result | {"pairs": len(paired), **pairs.gain(paired, seed)})
    return pd.DataFrame(results, columns=COLUMNS).reset_index(drop=True)


def _comparisons(group: np.ndarray, precision: np.ndarray) -> dict[tuple[int, str], np.ndarray]:
    """The rows of each (group, reduced precision) that ran, any status: group, then precision."""
    positions: dict[tuple[int, str], list[int]] = {}
    for position in np.flatnonzero(precision != BASELINE):
        positions.setdefault((int(group[position]), precision[position]), []).append(position)
    return {key: np.array(positions[key]) for key in sorted(positions)}


@dataclass(frozen=True)
class _Pairs:
    """Every pair of two ok, unflagged cells that differ only in precision (the fp32 one's
    columns suffixed `_base`), and which pairs each (group, reduced precision) has, in the order
    a merge of that comparison alone gives them (its bootstrap draws depend on that order)."""

    log_ratio: np.ndarray  # log(median fp32 / median reduced)
    base_samples: np.ndarray  # the fp32 cell's samples (object: one array a pair)
    reduced_samples: np.ndarray
    failed: np.ndarray  # fidelity failed or output not finite
    measured: np.ndarray  # fidelity was checked
    errors: np.ndarray  # relative error against the reference, NaN where not measured
    of_comparison: dict[tuple[int, str], list[int]]

    @classmethod
    def of(cls, rows: pd.DataFrame) -> _Pairs:
        usable = rows[(rows["status"] == "ok") & rows["median_ms"].notna() & ~is_outlier(rows)]
        usable = usable.reindex(columns=[*PAIR_KEYS, *PAIR_FIGURES, "precision", "_group"])
        baseline = usable[usable["precision"] == BASELINE][[*PAIR_KEYS, "median_ms", "samples_ms"]]
        reduced = usable[usable["precision"] != BASELINE]
        frame = reduced.merge(baseline, on=PAIR_KEYS, suffixes=("", "_base"), how="inner")
        of_comparison: dict[tuple[int, str], list[int]] = {}
        for index, key in enumerate(zip(frame["_group"], frame["precision"], strict=True)):
            of_comparison.setdefault(key, []).append(index)
        checked = frame["fidelity_ok"].astype("boolean")
        nonfinite = frame["nonfinite"].astype("boolean").fillna(False)
        errors = pd.to_numeric(frame["ref_rel_err"], errors="coerce")
        return cls(
            log_ratio=np.log(frame["median_ms_base"] / frame["median_ms"]).to_numpy(dtype=float),
            base_samples=frame["samples_ms_base"].to_numpy(dtype=object),
            reduced_samples=frame["samples_ms"].to_numpy(dtype=object),
            failed=(nonfinite | (checked == False).fillna(False)).to_numpy(dtype=bool),  # noqa: E712
            measured=checked.notna().to_numpy(dtype=bool),
            errors=errors.to_numpy(dtype=float, na_value=np.nan),
            of_comparison=of_comparison,
        )

    def gain(self, paired: list[int], seed: int) -> dict:
        """Speed-up, its CI, the fidelity verdict and the answer of one comparison's pairs."""
        # nanmean: what Series.mean gives (NaN skipped, the rest summed in place)
        point = float(np.exp(np.nanmean(self.log_ratio[paired])))
        low, high = _geomean_ci(self.base_samples[paired], self.reduced_samples[paired], seed)
        fidelity = (
            "fail"
            if self.failed[paired].any()
            else "pass"
            if self.measured[paired].all()
            else "not measured"
        )
        errors = self.errors[paired]
        return {
            "speedup": point,
            "speedup_ci95_low": low,
            "speedup_ci95_high": high,
            "fidelity": fidelity,
            "max_ref_rel_err": None if np.isnan(errors).all() else float(np.nanmax(errors)),
            "verdict": _verdict(point, low, high, fidelity),
        }


def _geomean_ci(
    base_samples: np.ndarray, reduced_samples: np.ndarray, seed: int
) -> tuple[float | None, float | None]:
    """Percentile bootstrap CI of the geometric mean speed-up, resampling each cell's samples."""
    rng = np.random.default_rng(seed)
    log_ratios = np.zeros(RESAMPLES)
    for base_raw, reduced_raw in zip(base_samples, reduced_samples, strict=True):
        reduced = sample_array({"samples_ms": reduced_raw})
        base = sample_array({"samples_ms": base_raw})
        if len(reduced) < 2 or len(base) < 2:
            return None, None
        log_ratios += np.log(_resampled_medians(base, rng) / _resampled_medians(reduced, rng))
    low, high = np.percentile(np.exp(log_ratios / len(base_samples)), [2.5, 97.5])
    return float(low), float(high)


def _resampled_medians(samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The medians of RESAMPLES resamples of `samples`: the values np.median gives (the middle
    value, or the mean of the middle two), from a sort of each short row, which is faster."""
    count = len(samples)
    ordered = np.sort(samples[rng.integers(0, count, (RESAMPLES, count))], axis=1)
    middle = count // 2
    if count % 2:
        return ordered[:, middle]
    return (ordered[:, middle - 1] + ordered[:, middle]) / 2


def _verdict(speedup: float, low: float | None, high: float | None, fidelity: str) -> str:
    if fidelity == "fail":
        return "no: fails fidelity"
    if low is None or high is None:
        return f"{speedup:.2f}x, too few samples to say"
    if low > 1.0:
        caveat = "" if fidelity == "pass" else " (fidelity not measured)"
        return f"yes: {speedup:.2f}x faster{caveat}"
    if high < 1.0:
        return f"no: {1 / speedup:.2f}x slower"
    return "no clear gain (CI includes 1x)"


def _no_pair_reason(cells: CellValues, tried: np.ndarray, flagged: int) -> str:
    not_ok = [int(p) for p in tried if cells.value(int(p), "status") != "ok"]
    if len(not_ok) == len(tried):
        status, error = cells.value(not_ok[0], "status"), cells.value(not_ok[0], "error")
        return f"did not run ({status}{': ' + str(error) if error else ''})"
    if flagged:
        return f"no comparison: {flagged} cell(s) flagged as outliers"
    return f"no {BASELINE} cell with the same settings to compare with"
