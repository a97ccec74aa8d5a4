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
    """`frame` with an `outlier_reason` column: why a row is not headline material, or None."""
    frame = frame.copy()
    reasons: dict[object, str] = {}
    ok = _ok_rows(frame)
    for index, row in ok.iterrows():
        spread = _spread_reason(row)
        if spread:
            reasons[index] = spread
    for _, series in ok.groupby([c for c in SERIES if c in ok.columns], dropna=False):
        for index, reason in _neighbour_reasons(series).items():
            reasons.setdefault(index, reason)
    frame["outlier_reason"] = pd.Series(reasons, dtype=object).reindex(frame.index)
    frame["outlier_reason"] = (
        frame["outlier_reason"].astype(object).where(frame["outlier_reason"].notna(), None)
    )
    return frame


def is_outlier(frame: pd.DataFrame) -> pd.Series:
    """True where `flag_outliers` gave the row a reason."""
    if "outlier_reason" not in frame.columns:
        return pd.Series(False, index=frame.index)
    return frame["outlier_reason"].notna()


def _ok_rows(frame: pd.DataFrame) -> pd.DataFrame:
    ok = frame
    if "status" in frame.columns:
        ok = ok[ok["status"] == "ok"]
    ok = ok[ok["median_ms"].notna() & (ok["median_ms"] > 0)]
    for name in ("channels_last", "vae", "cfg", "steps"):
        if name not in ok.columns:
            ok = ok.assign(**{name: None})
    return ok.assign(
        channels_last=ok["channels_last"].astype("boolean").fillna(False),
        vae=ok["vae"].fillna("default"),
    )


def _spread_reason(row: pd.Series) -> str | None:
    iqr = row.get("iqr_ms")
    if iqr is None or pd.isna(iqr):
        return None
    fraction = float(iqr) / float(row["median_ms"])
    if fraction <= SPREAD_LIMIT:
        return None
    return (
        f"noisy: IQR is {100 * fraction:.0f}% of the median (limit {100 * SPREAD_LIMIT:.0f}%); "
        "measure it again on a quiet machine"
    )


def _neighbour_reasons(series: pd.DataFrame) -> dict[object, str]:
    """Cells slower, beyond both CIs, than a neighbour of the series that does more work."""
    reasons: dict[object, str] = {}
    rows = list(series.iterrows())
    for index, small in rows:
        for _, large in rows:
            if not _less_work(small, large):
                continue
            low, high = _ci(small), _ci(large)
            if low is not None and high is not None and low[0] > high[1]:
                reasons[index] = (
                    f"contradicts its neighbour: {_shape(small)} took {time_text(small['median_ms'])}, "
                    f"slower than {_shape(large)} ({time_text(large['median_ms'])}) which does more work; "
                    "it was likely slowed by other load: measure it again"
                )
                break
    return reasons


def _less_work(small: pd.Series, large: pd.Series) -> bool:
    """`small` does strictly less work: fewer FLOPs, or (FLOPs unknown) a smaller batch, same size."""
    flops_small, flops_large = small.get("flops"), large.get("flops")
    if pd.notna(flops_small) and pd.notna(flops_large):
        return float(flops_small) < float(flops_large)
    same_size = small["height"] == large["height"] and small["width"] == large["width"]
    return bool(same_size and small["batch_size"] < large["batch_size"])


def _ci(row: pd.Series) -> tuple[float, float] | None:
    """The median's stored 95% CI; None when not stored (then no claim about noise is possible)."""
    low, high = row.get("ci95_low_ms"), row.get("ci95_high_ms")
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return None
    return float(low), float(high)


def _shape(row: pd.Series) -> str:
    return f"{row['width']}x{row['height']} batch {row['batch_size']}"
