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

import pandas as pd

from sdbench.analysis.compare import bootstrap_ratio_ci, sample_array
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


def fastest_settings(frame: pd.DataFrame, require_fidelity: bool = False) -> pd.DataFrame:
    """One row per workload: its fastest passing configuration and the speed-up over the default.

    Workloads where nothing passes keep a row with null configuration and a `reason`.
    """
    # Ingested pytest benchmarks that are not sdbench cells have no configuration to rank.
    rows = latest_per_series(with_config_columns(frame[frame["model"].notna()]))
    if rows.empty:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    rows = flag_outliers(rows)
    results = [
        _best_of_workload(group, require_fidelity)
        for _, group in rows.groupby(WORKLOAD, dropna=False, sort=True)
    ]
    return pd.DataFrame(results, columns=RESULT_COLUMNS).reset_index(drop=True)


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


def _best_of_workload(group: pd.DataFrame, require_fidelity: bool) -> dict:
    first = group.iloc[0]
    ok = group[(group["status"] == "ok") & group["median_ms"].notna()]
    flagged = is_outlier(ok)
    passing = ok[passes_fidelity(ok, require_fidelity) & ~flagged]
    result = {name: first[name] for name in WORKLOAD}
    result |= {
        "machine": first.get("machine"),
        "device_name": first.get("device_name"),
        "candidates": len(passing),
        "rejected_fidelity": int((~passes_fidelity(ok, require_fidelity)).sum()),
        "not_ok": len(group) - len(ok),
        "outliers": int(flagged.sum()),
    }
    device = str(first["device"])
    result["default_precision"] = default_precision(device, set(ok["precision"]))
    default = default_row(ok, device)
    result["default_median_ms"] = None if default is None else float(default["median_ms"])
    if passing.empty:
        result["reason"] = _no_candidate_reason(len(group), len(ok), require_fidelity)
        return result
    best = passing.sort_values(
        ["median_ms", "ci95_high_ms"], na_position="last", kind="stable"
    ).iloc[0]
    result |= {name: best[name] for name in CONFIG}
    result |= {
        name: best[name]
        for name in (
            "median_ms",
            "ci95_low_ms",
            "ci95_high_ms",
            "it_per_s",
            "images_per_s",
            "run_id",
            "cell_id",
        )
    }
    result["fidelity_ok"] = None if pd.isna(best["fidelity_ok"]) else bool(best["fidelity_ok"])
    result["fidelity_checked"] = result["fidelity_ok"] is not None
    result["ref_rel_err"] = best["ref_rel_err"]
    if default is not None and default.get("outlier_reason") is not None:
        result["reason"] = (
            f"no speed-up claimed: the default cell is flagged ({default['outlier_reason']})"
        )
    elif default is not None:
        result |= speedup_with_ci(default, best)
    return result


def speedup_with_ci(baseline: pd.Series, faster: pd.Series) -> dict:
    """median(baseline) / median(faster), with a 95% bootstrap CI over both cells' samples."""
    speedup = float(baseline["median_ms"]) / float(faster["median_ms"])
    low = high = None
    base, cur = sample_array(faster), sample_array(baseline)
    if len(base) >= 2 and len(cur) >= 2:
        low, high = bootstrap_ratio_ci(base, cur)
    return {"speedup": speedup, "speedup_ci95_low": low, "speedup_ci95_high": high}


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
