""" "Is bf16/fp16 worth it here?": per stage, each reduced precision against fp32, with a CI and fidelity.

A pair is two ok cells that differ only in precision (same device, model, stage, size, batch,
guidance, attention, compile and VAE). Per (device, model, stage, precision) the speed-up is the
geometric mean over its pairs of median(fp32) / median(precision), its 95% CI a percentile
bootstrap that resamples every cell's own samples. Cells `analysis.outliers` flags never form a
pair. The fidelity verdict is over the reduced-precision cells of the pairs: `pass` when every one
was checked and passed, `fail` when any failed or gave NaN/inf, `not measured` otherwise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sdbench.analysis.best import CONFIG, WORKLOAD, with_config_columns
from sdbench.analysis.compare import sample_array
from sdbench.analysis.outliers import flag_outliers, is_outlier
from sdbench.machine import latest_per_series

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
RESAMPLES = 2000


def precision_gains(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """One row per (device, model, stage, reduced precision): speed-up over fp32, CI, fidelity."""
    # Ingested pytest benchmarks that are not sdbench cells have no precision to compare.
    rows = latest_per_series(with_config_columns(frame[frame["model"].notna()]))
    if rows.empty:
        return pd.DataFrame(columns=COLUMNS)
    rows = flag_outliers(rows)
    rows = rows.assign(
        channels_last=rows["channels_last"].astype("boolean").fillna(False).astype(bool),
        vae=rows["vae"].fillna("default"),
    )
    results = []
    for key, group in rows.groupby(GROUP, dropna=False, sort=True):
        for precision in sorted(set(group["precision"]) - {BASELINE}):
            results.append(_gain(dict(zip(GROUP, key, strict=True)), group, precision, seed))
    return pd.DataFrame(results, columns=COLUMNS).reset_index(drop=True)


def _gain(key: dict, group: pd.DataFrame, precision: str, seed: int) -> dict:
    usable = group[(group["status"] == "ok") & group["median_ms"].notna()]
    candidates = usable[usable["precision"].isin([BASELINE, precision])]
    flagged = int(is_outlier(candidates).sum())
    usable = usable[~is_outlier(usable)]
    reduced = usable[usable["precision"] == precision]
    baseline = usable[usable["precision"] == BASELINE]
    pairs = reduced.merge(baseline, on=PAIR_KEYS, suffixes=("", "_base"), how="inner")
    result = {
        **key,
        "machine": group["machine"].iloc[0],
        "device_name": group["device_name"].iloc[0] if "device_name" in group else None,
        "precision": precision,
        "baseline": BASELINE,
        "pairs": len(pairs),
        "outliers": flagged,
    }
    if pairs.empty:
        return result | {"verdict": _no_pair_reason(group, precision, flagged)}
    speedup, low, high = _geomean_speedup(pairs, seed)
    fidelity, max_err = _fidelity(pairs)
    result |= {
        "speedup": speedup,
        "speedup_ci95_low": low,
        "speedup_ci95_high": high,
        "fidelity": fidelity,
        "max_ref_rel_err": max_err,
    }
    return result | {"verdict": _verdict(speedup, low, high, fidelity)}


def _geomean_speedup(pairs: pd.DataFrame, seed: int) -> tuple[float, float | None, float | None]:
    point = float(np.exp(np.mean(np.log(pairs["median_ms_base"] / pairs["median_ms"]))))
    rng = np.random.default_rng(seed)
    log_ratios = np.zeros(RESAMPLES)
    for _, pair in pairs.iterrows():
        reduced = sample_array(pair)
        base = sample_array({"samples_ms": pair["samples_ms_base"]})
        if len(reduced) < 2 or len(base) < 2:
            return point, None, None
        log_ratios += np.log(_resampled_medians(base, rng) / _resampled_medians(reduced, rng))
    low, high = np.percentile(np.exp(log_ratios / len(pairs)), [2.5, 97.5])
    return point, float(low), float(high)


def _resampled_medians(samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.median(samples[rng.integers(0, len(samples), (RESAMPLES, len(samples)))], axis=1)


def _fidelity(pairs: pd.DataFrame) -> tuple[str, float | None]:
    checked = pairs["fidelity_ok"].astype("boolean")
    nonfinite = pairs["nonfinite"].astype("boolean").fillna(False)
    errors = pd.to_numeric(pairs["ref_rel_err"], errors="coerce")
    max_err = None if errors.isna().all() else float(errors.max())
    if bool(nonfinite.any()) or bool((checked == False).any()):  # noqa: E712 (nullable booleans)
        return "fail", max_err
    if bool(checked.notna().all()):
        return "pass", max_err
    return "not measured", max_err


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


def _no_pair_reason(group: pd.DataFrame, precision: str, flagged: int) -> str:
    tried = group[group["precision"] == precision]
    not_ok = tried[tried["status"] != "ok"]
    if len(not_ok) == len(tried):
        status = not_ok["status"].iloc[0]
        error = not_ok["error"].iloc[0] if "error" in not_ok else None
        return f"did not run ({status}{': ' + str(error) if error else ''})"
    if flagged:
        return f"no comparison: {flagged} cell(s) flagged as outliers"
    return f"no {BASELINE} cell with the same settings to compare with"
