"""Cells whose figures cannot be trusted as a headline: too noisy, or contradicted by their neighbours.

Noise on a shared machine only ever adds time, so a cell measured while something else ran is
*slower* than it should be. Two signs give such a cell away:

- **More work, less time.** Within one series (same device, model, stage, precision and knobs),
  a cell that does less work than a neighbour (a smaller batch or image: fewer FLOPs) cannot be
  slower than it beyond the noise. When its median's 95% CI lies wholly above the neighbour's,
  the cell doing less work is flagged: it is the one that was slowed down.
- **Spread.** An interquartile range above `SPREAD_LIMIT` of the median: the samples disagree
  with each other too much for the median to mean much.

Flags are data (`outlier_reason`, null when the cell is fine); `best` leaves flagged cells out of
its speed-up claims and the report lists them. Pure pandas, no torch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sdbench.units import time_text

SPREAD_LIMIT = 0.25  # IQR / median; the per-cell "high spread" warning starts at 0.10
SERIES = [
    "machine_id",  # another machine's cell is no neighbour: its speed says nothing about this one
    "device",
    "model",
    "stage",
    "precision",
    "attention",
    "compile",
    "channels_last",
    "vae",
    "memory",
    "quant",
    "cache",
    "cfg",
    "steps",
]


def flag_outliers(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with an `outlier_reason` column: why a row is not headline material, or None.

    A spread reason wins over a neighbour reason. Column-wise over the whole frame: a fleet's
    report flags thousands of rows, so no per-row Python work except for the rows flagged.
    """
    frame = frame.copy()
    keep = _ok_mask(frame)
    ok = _ok_rows(frame[keep])
    reasons = _neighbour_reasons(ok)
    spread = _spread_reasons(ok)
    reasons[spread.notna().to_numpy()] = spread.dropna().to_numpy()
    column = np.full(len(frame), None, dtype=object)
    column[np.flatnonzero(keep)] = reasons
    frame["outlier_reason"] = pd.Series(column, index=frame.index, dtype=object)  # not str: None
    return frame


def is_outlier(frame: pd.DataFrame) -> pd.Series:
    """True where `flag_outliers` gave the row a reason."""
    if "outlier_reason" not in frame.columns:
        return pd.Series(False, index=frame.index)
    return frame["outlier_reason"].notna()


def _ok_mask(frame: pd.DataFrame) -> np.ndarray:
    """Rows that ran ok with a positive median: the only ones a flag can be about."""
    ok = frame["median_ms"].notna() & (frame["median_ms"] > 0)
    if "status" in frame.columns:
        ok &= frame["status"] == "ok"
    return ok.to_numpy(dtype=bool)


def _ok_rows(ok: pd.DataFrame) -> pd.DataFrame:
    """`ok` with the series columns a hand-made frame may lack, nulls read as their default."""
    for name in ("channels_last", "vae", "cfg", "steps"):
        if name not in ok.columns:
            ok = ok.assign(**{name: None})
    return ok.assign(
        channels_last=ok["channels_last"].astype("boolean").fillna(False),
        vae=ok["vae"].fillna("default"),
    )


def _numbers(frame: pd.DataFrame, name: str) -> np.ndarray:
    """Column `name` as floats, NaN where null or absent."""
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _spread_reasons(ok: pd.DataFrame) -> pd.Series:
    """Per row: the too-wide-IQR reason, or null."""
    fraction = pd.Series(_numbers(ok, "iqr_ms") / _numbers(ok, "median_ms"))
    return fraction.where(fraction > SPREAD_LIMIT).map(
        lambda f: (
            f"noisy: IQR is {100 * f:.0f}% of the median (limit {100 * SPREAD_LIMIT:.0f}%); "
            "measure it again on a quiet machine"
        ),
        na_action="ignore",
    )


def _neighbour_reasons(ok: pd.DataFrame) -> np.ndarray:
    """Per row of `ok`: why it is slower, beyond both CIs, than a neighbour of its series that
    does more work (the first such neighbour in row order), or None."""
    reasons = np.full(len(ok), None, dtype=object)
    low, high = _numbers(ok, "ci95_low_ms"), _numbers(ok, "ci95_high_ms")
    stored = np.flatnonzero(~np.isnan(low) & ~np.isnan(high))  # no CI: no claim about noise
    if len(stored) == 0:
        return reasons
    keys = [c for c in SERIES if c in ok.columns]
    series = ok.iloc[stored].groupby(keys, dropna=False, sort=False).ngroup().to_numpy()
    small, large = _pairs_within(series, stored)
    work = {name: _numbers(ok, name) for name in ("flops", "height", "width", "batch_size")}
    hit = _less_work(work, small, large) & (low[small] > high[large])
    # Pairs come ordered by small row, then large row: the first hit per row is its neighbour.
    small, first = np.unique(small[hit], return_index=True)
    large = large[hit][first]
    for row, neighbour in zip(small.tolist(), large.tolist(), strict=True):
        reasons[row] = _contradiction(ok, row, neighbour)
    return reasons


def _pairs_within(groups: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every ordered pair (small, large) of `rows` in the same group, by small then large row.

    Memory grows with the square of a series' size: a series is one configuration's shapes
    (sizes x batches), a few dozen rows at most.
    """
    order = np.lexsort((rows, groups))
    rows, groups = rows[order], groups[order]
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    sizes = np.diff(np.r_[starts, len(rows)])
    size_of, start_of = np.repeat(sizes, sizes), np.repeat(starts, sizes)
    small = np.repeat(np.arange(len(rows)), size_of)
    offset = np.arange(len(small)) - np.repeat(np.cumsum(size_of) - size_of, size_of)
    large = np.repeat(start_of, size_of) + offset
    return rows[small], rows[large]


def _less_work(work: dict[str, np.ndarray], small: np.ndarray, large: np.ndarray) -> np.ndarray:
    """`small` does strictly less work: fewer FLOPs, or (FLOPs unknown) a smaller batch, same size."""
    flops = work["flops"]
    known = ~np.isnan(flops[small]) & ~np.isnan(flops[large])
    same_size = (work["height"][small] == work["height"][large]) & (
        work["width"][small] == work["width"][large]
    )
    smaller_batch = same_size & (work["batch_size"][small] < work["batch_size"][large])
    return np.where(known, flops[small] < flops[large], smaller_batch)


def _contradiction(ok: pd.DataFrame, small: int, large: int) -> str:
    """The neighbour reason for row `small` of `ok` against row `large`."""
    slow, fast = ok.iloc[small], ok.iloc[large]
    return (
        f"contradicts its neighbour: {_shape(slow)} took {time_text(slow['median_ms'])}, "
        f"slower than {_shape(fast)} ({time_text(fast['median_ms'])}) which does more work; "
        "it was likely slowed by other load: measure it again"
    )


def _shape(row: pd.Series) -> str:
    return f"{row['width']}x{row['height']} batch {row['batch_size']}"
