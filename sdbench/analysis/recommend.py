"""Which GPU to buy or rent for a workload, per budget tier: fastest, best value, lowest energy."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from sdbench.analysis.correction import GpuCorrection, fit_corrections
from sdbench.analysis.perfmodel import Calibration, calibration_for
from sdbench.analysis.predict import Prediction, predict, workload_evidence
from sdbench.analysis.this_cpu import measured_cpus
from sdbench.analysis.workload import CostAssumptions, ImageWorkload
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
    workload: ImageWorkload,
    results: pd.DataFrame | None,
    cloud: bool,
    costs: CostAssumptions,
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
    evidence = workload_evidence(results, workload)
    rows = []
    for gpu in gpus if gpus is not None else load_catalogue():
        if cloud and gpu.cloud_usd_per_h is None:
            continue
        answer = predict(gpu, workload, results, calibration, corrections, evidence)
        if not cloud and gpu.street_price_usd is None and not datacenter:
            continue
        rows.append(_priced(answer, gpu, cloud, costs))
    return pd.DataFrame(rows)


def _priced(answer: Prediction, gpu: GPU, cloud: bool, costs: CostAssumptions) -> dict:
    """A prediction as a candidate row: its price, the price the budget sees and $ per 1000 images."""
    row = answer.to_dict()
    row["price_usd"] = None if cloud else gpu.price_usd
    row["cloud_usd_per_h"] = gpu.cloud_usd_per_h
    row["budget_price"] = gpu.cloud_usd_per_h if cloud else gpu.street_price_usd
    row["images_per_min"] = 60.0 * row["images_per_s"]
    row["headroom_pct"] = 100.0 * row["headroom_bytes"] / row["vram_bytes"]
    row["cost_per_1000_usd"] = (
        1000 * answer.s_per_image / 3600 * gpu.cloud_usd_per_h
        if cloud
        else costs.per_1000_images_usd(answer.s_per_image, answer.energy_per_image_j, gpu.price_usd)
    )
    return row


def _pick(pool: pd.DataFrame, column: str, among: pd.Series | None = None) -> pd.Series | None:
    """The row lowest in `column`, then fastest, then first; a missing figure never wins.
    `among`: a boolean mask of the rows that may win (default all).

    A stable sort of the table on (column, s_per_image) would give the same row: this scans the
    two columns instead of reordering the whole table, once per tier and criterion.
    """
    allowed = [True] * len(pool) if among is None else among.to_numpy(dtype=bool)
    best: tuple[tuple, int] | None = None
    for position, (value, speed, ok) in enumerate(
        zip(pool[column], pool["s_per_image"], allowed, strict=True)
    ):
        if not ok or pd.isna(value):
            continue
        key = (value, pd.isna(speed), 0.0 if pd.isna(speed) else speed)
        if best is None or key < best[0]:
            best = (key, position)
    return None if best is None else pool.iloc[best[1]]


def _tier_note(pool: pd.DataFrame, in_tier: pd.Series) -> str:
    blocked = pool[in_tier & ~pool["fits"]]
    notes = []
    if not blocked.empty:
        example = blocked.sort_values("s_per_image").iloc[0]
        fixes = example["ways_to_fit"]
        how = f"; {example['gpu']} fits with {fixes[0]}" if fixes else ""
        notes.append(f"{len(blocked)} too small{how}")
    return "; ".join(notes)


def _uncalibrated_note(
    pool: pd.DataFrame, fitting: pd.Series, picks: dict[str, pd.Series | None]
) -> str:
    """Uncalibrated cards never take a pick; say when one would have, and how unsure it is."""
    beaten = []
    uncalibrated = fitting & ~pool["calibrated"]
    for criterion, (column, label) in CRITERIA.items():
        rival = _pick(pool, column, uncalibrated)
        pick = picks[criterion]
        if rival is not None and (pick is None or rival[column] < pick[column]):
            beaten.append((rival["gpu"], label))
    names = list(dict.fromkeys(gpu for gpu, _ in beaten))
    return "; ".join(
        f"{gpu} looks {' and '.join(label for g, label in beaten if g == gpu)} but is uncalibrated "
        "(no GPU of its family measured), so it is not picked"
        for gpu in names
    )


@dataclass(frozen=True)
class Recommendation:
    """Per budget tier and criterion (fastest, best value, lowest energy) the GPU to pick, plus a
    row per machine whose CPU measured the workload; `table` has COLUMNS, one row per pick."""

    workload: ImageWorkload
    cloud: bool
    costs: CostAssumptions
    table: pd.DataFrame = field(compare=False, hash=False)

    def records(self) -> list[dict]:
        """The table's rows as JSON-ready dicts (missing figures are None)."""
        table = self.table
        return table.astype(object).where(table.notna(), None).to_dict("records")


def recommend(
    workload: ImageWorkload,
    results: pd.DataFrame | None = None,
    budgets: Sequence[float] | None = None,
    cloud: bool = False,
    costs: CostAssumptions | None = None,
    datacenter: bool = False,
    calibration: Calibration | None = None,
    corrections: dict[str, GpuCorrection] | None = None,
) -> Recommendation:
    """One row per budget tier x criterion (fastest, best_value, lowest_energy), plus a measured CPU row.

    A GPU whose memory cannot hold the workload is never picked; the tier's note says what would
    make the fastest such GPU fit. Budgets are purchase USD, or USD per hour with `cloud`.
    `calibration` and `corrections` default to those fitted on `results` (pass them to reuse
    one fit).
    """
    costs = costs or CostAssumptions()
    pool = candidates(
        workload, results, cloud, costs, datacenter=datacenter, calibration=calibration,
        corrections=corrections,
    )  # fmt: skip
    tiers = (
        sorted(budgets)
        if budgets
        else (DEFAULT_CLOUD_BUDGETS_USD_PER_H if cloud else DEFAULT_BUDGETS_USD)
    )
    out = []
    for budget in tiers:
        out += _tier_rows(pool, budget, cloud)
    for cpu in measured_cpus(results, workload):
        out.append({"tier": "this machine", "criterion": "cpu", **cpu})
    return Recommendation(workload, cloud, costs, pd.DataFrame(out).reindex(columns=COLUMNS))


def _tier_rows(pool: pd.DataFrame, budget: float, cloud: bool) -> list[dict]:
    """The picks of one budget tier, one row per criterion, with the tier's note."""
    # Masks over the pool, not filtered copies of it: 24 tiers x 4 filters of a 30-column table
    # were most of a report's recommendations.
    priced = pool["budget_price"].notna() & (pool["budget_price"] <= budget)
    in_tier = priced | (math.isinf(budget) & pool["budget_price"].isna())
    fitting = in_tier & pool["fits"]
    calibrated = fitting & pool["calibrated"]
    picks = {c: _pick(pool, col, calibrated) for c, (col, _) in CRITERIA.items()}
    notes = (_tier_note(pool, in_tier), _uncalibrated_note(pool, fitting, picks))
    note = "; ".join(n for n in notes if n)
    out = []
    for criterion in CRITERIA:
        pick = picks[criterion]
        row = {
            "tier": _tier_label(budget, cloud),
            "budget_usd": None if math.isinf(budget) else budget,
            "criterion": criterion,
        }
        if pick is None:
            row["note"] = "no GPU in this tier holds the workload" + (f" ({note})" if note else "")
        else:
            row.update({k: pick.get(k) for k in COLUMNS if k not in row})
            row["note"] = note
        out.append(row)
    return out
