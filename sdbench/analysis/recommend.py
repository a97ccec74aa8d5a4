"""Which GPU to buy or rent for a workload, per budget tier: fastest, best value, lowest energy."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from sdbench.analysis.correction import GpuCorrection, fit_corrections
from sdbench.analysis.perfmodel import Calibration, Workload, calibration_for
from sdbench.analysis.predict import cost_per_1000_usd, predict, usual_workload
from sdbench.analysis.this_cpu import measured_cpus
from sdbench.gpus import GPU, load_catalogue

DEFAULT_BUDGETS_USD = (300.0, 600.0, 1000.0, 2000.0, 5000.0, math.inf)
DEFAULT_CLOUD_BUDGETS_USD_PER_H = (0.5, 1.0, 2.0, math.inf)
CRITERIA = {  # criterion -> (column to minimise, label)
    "fastest": ("s_per_image", "fastest"),
    "best_value": ("cost_per_1000_usd", "most images per dollar"),
    "lowest_energy": ("energy_per_image_j", "lowest energy per image"),
}
COLUMNS = [
    "tier", "budget_usd", "criterion", "gpu", "price_usd", "cloud_usd_per_h", "s_per_image", "s_per_image_low",
    "s_per_image_high", "images_per_min", "images_per_s", "it_per_s", "peak_vram_bytes", "vram_bytes", "headroom_pct",
    "fits", "energy_per_image_j", "cost_per_1000_usd", "source", "calibrated", "note",
]  # fmt: skip


def _tier_label(budget: float, cloud: bool) -> str:
    if math.isinf(budget):
        return "any"
    return f"<= ${budget:g}/h" if cloud else f"<= ${budget:,.0f}"


def candidates(
    workload: Workload,
    results: pd.DataFrame | None,
    cloud: bool,
    electricity_usd_per_kwh: float,
    lifetime_years: float,
    hours_per_day: float,
    gpus: Sequence[GPU] | None = None,
    datacenter: bool = False,
    calibration: Calibration | None = None,
    corrections: dict[str, GpuCorrection] | None = None,
) -> pd.DataFrame:
    """One row per catalogue GPU with its prediction (or measurement), price and cost per 1000 images.

    A purchase needs a street price: cards with only a launch or list price (datacenter parts,
    discontinued cards) are left out unless `datacenter`, which lets them into the open tier.
    """
    calibration = calibration or calibration_for(results)  # fitted once per report: analysis
    corrections = fit_corrections(results, calibration) if corrections is None else corrections
    rows = []
    for gpu in gpus if gpus is not None else load_catalogue():
        if cloud and gpu.cloud_usd_per_h is None:
            continue
        answer = predict(gpu, workload.model, workload.height, workload.width, workload.batch_size, workload.precision,
                         workload.steps, workload.attention, workload.compile, results, calibration,
                         cfg=workload.cfg, corrections=corrections)  # fmt: skip
        if not cloud and gpu.street_price_usd is None and not datacenter:
            continue
        price = gpu.cloud_usd_per_h if cloud else gpu.street_price_usd
        answer["price_usd"] = None if cloud else gpu.price_usd
        answer["cloud_usd_per_h"] = gpu.cloud_usd_per_h
        answer["budget_price"] = price
        answer["images_per_min"] = 60.0 * answer["images_per_s"]
        answer["headroom_pct"] = 100.0 * answer["headroom_bytes"] / answer["vram_bytes"]
        answer["cost_per_1000_usd"] = cost_per_1000_usd(
            answer["s_per_image"], answer["energy_per_image_j"], gpu.price_usd, electricity_usd_per_kwh,
            lifetime_years, hours_per_day, gpu.cloud_usd_per_h if cloud else None,
        )  # fmt: skip
        rows.append(answer)
    return pd.DataFrame(rows)


def _pick(pool: pd.DataFrame, column: str) -> pd.Series | None:
    ranked = pool.dropna(subset=[column]).sort_values([column, "s_per_image"])
    return None if ranked.empty else ranked.iloc[0]


def _tier_note(in_tier: pd.DataFrame) -> str:
    blocked = in_tier[~in_tier["fits"]]
    notes = []
    if not blocked.empty:
        example = blocked.sort_values("s_per_image").iloc[0]
        fixes = example["ways_to_fit"]
        how = f"; {example['gpu']} fits with {fixes[0]}" if fixes else ""
        notes.append(f"{len(blocked)} too small{how}")
    return "; ".join(notes)


def _uncalibrated_note(fitting: pd.DataFrame, picks: dict[str, pd.Series | None]) -> str:
    """Uncalibrated cards never take a pick; say when one would have, and how unsure it is."""
    beaten = []
    for criterion, (column, label) in CRITERIA.items():
        rival = _pick(fitting[~fitting["calibrated"]], column)
        pick = picks[criterion]
        if rival is not None and (pick is None or rival[column] < pick[column]):
            beaten.append((rival["gpu"], label))
    names = list(dict.fromkeys(gpu for gpu, _ in beaten))
    return "; ".join(
        f"{gpu} looks {' and '.join(label for g, label in beaten if g == gpu)} but is uncalibrated "
        "(no GPU of its family measured), so it is not picked"
        for gpu in names
    )


def recommend(
    model: str,
    height: int,
    width: int | None = None,
    batch_size: int = 1,
    precision: str = "fp16",
    steps: int | None = None,
    attention: str = "sdpa",
    compile: str = "none",
    budgets: Sequence[float] | None = None,
    results: pd.DataFrame | None = None,
    cloud: bool = False,
    electricity_usd_per_kwh: float = 0.15,
    lifetime_years: float = 3.0,
    hours_per_day: float = 4.0,
    cfg: bool | None = None,
    datacenter: bool = False,
    calibration: Calibration | None = None,
    corrections: dict[str, GpuCorrection] | None = None,
) -> pd.DataFrame:
    """One row per budget tier x criterion (fastest, best_value, lowest_energy), plus a measured CPU row.

    A GPU whose memory cannot hold the workload is never picked; the tier's note says what would
    make the fastest such GPU fit. Budgets are purchase USD, or USD per hour with `cloud`.
    `steps` and `cfg` default to the model's usual use (predict.usual_workload); `calibration`
    and `corrections` to those fitted on `results` (pass them to reuse one fit).
    """
    workload = usual_workload(
        model, height, width, batch_size, precision, steps, attention, compile, cfg
    )
    pool = candidates(
        workload,
        results,
        cloud,
        electricity_usd_per_kwh,
        lifetime_years,
        hours_per_day,
        datacenter=datacenter,
        calibration=calibration,
        corrections=corrections,
    )
    tiers = (
        sorted(budgets)
        if budgets
        else (DEFAULT_CLOUD_BUDGETS_USD_PER_H if cloud else DEFAULT_BUDGETS_USD)
    )
    out = []
    for budget in tiers:
        priced = pool["budget_price"].notna() & (pool["budget_price"] <= budget)
        in_tier = pool[priced | (math.isinf(budget) & pool["budget_price"].isna())]
        fitting = in_tier[in_tier["fits"]]
        picks = {c: _pick(fitting[fitting["calibrated"]], col) for c, (col, _) in CRITERIA.items()}
        note = "; ".join(n for n in (_tier_note(in_tier), _uncalibrated_note(fitting, picks)) if n)
        for criterion in CRITERIA:
            pick = picks[criterion]
            row = {
                "tier": _tier_label(budget, cloud),
                "budget_usd": None if math.isinf(budget) else budget,
                "criterion": criterion,
            }
            if pick is None:
                row["note"] = "no GPU in this tier holds the workload" + (
                    f" ({note})" if note else ""
                )
            else:
                row.update({k: pick.get(k) for k in COLUMNS if k not in row})
                row["note"] = note
            out.append(row)
    for cpu in measured_cpus(results, workload):
        out.append({"tier": "this machine", "criterion": "cpu", **cpu})
    return pd.DataFrame(out).reindex(columns=COLUMNS)
