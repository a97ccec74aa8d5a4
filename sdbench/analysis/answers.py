"""The questions a report answers first, per measured device: an image's time and energy here, the
fastest passing setting and its gain, "do I need a GPU?", and the GPU to pick per budget.

The main workload of a device is the largest image (batch 1 first) of its most-measured model for
which the text encoder, the denoiser step and the VAE decode all finished ok. One image is
composed as in `analysis.per_image`: text encoder + usual steps x denoiser step + VAE decode.
The *default* image uses each stage's plain default cell, the *fastest* one each stage's fastest
passing cell (`analysis.best`: fidelity passes, outliers left out), so a CPU that measured bf16
only for the UNet step still answers "what does bf16 gain per image". The GPU side comes from
`analysis.recommend` for the same workload. Pure pandas; the report only renders this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from sdbench.analysis.best import default_row, fastest_settings, flag_latest
from sdbench.analysis.per_image import STAGES, call_energy_j
from sdbench.errors import SdbenchError
from sdbench.levers import describe as describe_levers
from sdbench.models.registry import MODELS
from sdbench.store.schema import guided

if TYPE_CHECKING:
    from sdbench.analysis.correction import GpuCorrection
    from sdbench.analysis.perfmodel import Calibration

MAX_DEVICES = 3


@dataclass(frozen=True)
class Image:
    """One composed image: seconds, joules (None: not measured) and the setting per stage."""

    seconds: float
    energy_j: float | None
    settings: dict[str, str]


@dataclass
class DeviceAnswers:
    device: str
    device_name: str
    model: str
    height: int
    width: int
    batch_size: int
    steps: int
    cfg: bool
    default: Image | None
    fastest: Image | None
    unet_speedup: tuple[float, float | None, float | None] | None  # speed-up, 95% CI
    gpu_picks: list[dict] = field(default_factory=list)  # three GPUs against this device
    budget_picks: list[dict] = field(default_factory=list)  # per tier: fastest and best value
    notes: list[str] = field(default_factory=list)

    @property
    def gain(self) -> float | None:
        if self.default is None or self.fastest is None or self.fastest.seconds <= 0:
            return None
        return self.default.seconds / self.fastest.seconds


def answers(
    frame: pd.DataFrame,
    calibration: Calibration | None = None,
    best: pd.DataFrame | None = None,
    corrections: dict[str, GpuCorrection] | None = None,
    flagged: pd.DataFrame | None = None,
) -> list[DeviceAnswers]:
    """One DeviceAnswers per measured device with a whole image's stages (at most MAX_DEVICES).

    `calibration` and `corrections` (the performance model's fit to these results), `best`
    (`fastest_settings(frame)`) and `flagged` (`best.flag_latest(frame)`) are computed here
    unless the caller already has them.
    """
    flagged = flag_latest(frame) if flagged is None else flagged
    latest = flagged.assign(cfg=guided(flagged))
    best = fastest_settings(frame, flagged=flagged) if best is None else best
    out = []
    for machine, device, workload in _main_workloads(latest)[:MAX_DEVICES]:
        rows = latest[latest["machine_id"] == machine]  # never mix two machines' cells
        machine_best = best[best["machine_id"] == machine]
        fit = (calibration, corrections)
        out.append(_device_answers(rows, machine_best, device, workload, fit))
    return out


WORKLOAD_KEYS = ["model", "height", "width", "batch_size", "cfg"]


def _main_workloads(latest: pd.DataFrame) -> list[tuple[object, str, dict]]:
    """(machine_id, device, main workload) per device whose stages compose a whole image, by
    machine then device: of those workloads, the most-measured model's, batch 1, largest image,
    the first measured among equals. Grouped passes over every machine's rows at once."""
    ok = latest[(latest["status"] == "ok") & latest["stage"].isin(STAGES)]
    per, keys = ["machine_id", "device"], WORKLOAD_KEYS
    complete = _complete_workloads(ok, per)
    if complete.empty:
        return []
    counts = ok.groupby([*per, "model"]).size().rename("model_rows").reset_index()
    ranked = complete.merge(counts, on=[*per, "model"], how="left")
    ranked = ranked.assign(
        first_measured=-ranked.index.to_numpy(),  # in the order the workloads were measured
        batch_one=ranked["batch_size"] == 1,
        pixels=ranked["height"] * ranked["width"],
    )
    rank = ["model_rows", "batch_one", "pixels", "first_measured"]
    main = ranked.sort_values(rank, ascending=False).drop_duplicates(per)
    main = main.assign(device=main["device"].astype(str)).sort_values(per)
    return [
        (machine, device, dict(zip(keys, values, strict=True)))
        for machine, device, *values in main[[*per, *keys]].itertuples(index=False)
    ]


def _complete_workloads(ok: pd.DataFrame, per: list[str]) -> pd.DataFrame:
    """The (`per`, WORKLOAD_KEYS) whose every stage in STAGES ran ok, in first-measured order."""
    keys = [*per, *WORKLOAD_KEYS]
    shapes = ok.dropna(subset=keys)
    stages = [stage for stage in STAGES if stage != "text_encoder"]
    found = (
        shapes.assign(**{f"has_{stage}": shapes["stage"] == stage for stage in stages})
        .groupby(keys, sort=False)[[f"has_{stage}" for stage in stages]]
        .any()
        .reset_index()
    )
    # A text encoder row at another image size serves this one: 77 tokens whatever the size.
    on = [*per, "model", "batch_size", "cfg"]
    encoders = ok.loc[ok["stage"] == "text_encoder", on].drop_duplicates()
    found = found.merge(encoders, on=on, how="left", indicator="encoder")
    whole = found[[f"has_{stage}" for stage in stages]].all(axis=1) & (found["encoder"] == "both")
    return found.loc[whole, keys].reset_index(drop=True)


def _device_answers(
    latest: pd.DataFrame,
    best: pd.DataFrame,
    device: str,
    workload: dict,
    fit: tuple[Calibration | None, dict[str, GpuCorrection] | None],
) -> DeviceAnswers:
    spec = MODELS.get(workload["model"])
    steps = spec.default_steps if spec is not None else 50
    stage_rows = {stage: _stage_rows(latest, device, workload, stage) for stage in STAGES}
    defaults = {s: default_row(rows, device) for s, rows in stage_rows.items()}
    fastest = {s: _fastest_row(latest, best, device, workload, s) for s in STAGES}
    names = latest.loc[latest["device"] == device, "device_name"].dropna()
    result = DeviceAnswers(
        device=device, device_name=str(names.iloc[0]) if len(names) else device,
        model=str(workload["model"]), height=int(workload["height"]), width=int(workload["width"]),
        batch_size=int(workload["batch_size"]), steps=steps, cfg=bool(workload["cfg"]),
        default=_compose(defaults, steps, int(workload["batch_size"])),
        fastest=_compose(fastest, steps, int(workload["batch_size"])),
        unet_speedup=_unet_speedup(best, device, workload),
    )  # fmt: skip
    if result.default is None:
        result.notes.append(
            "No default image: a stage's plain default cell (sdpa, no compile, fp32 on CPU, fp16 "
            "on GPU) did not run ok or was flagged as an outlier, so no gain is claimed."
        )
    _add_gpu_picks(result, latest, *fit)
    return result


def _stage_rows(latest: pd.DataFrame, device: str, workload: dict, stage: str) -> pd.DataFrame:
    rows = latest[
        (latest["device"] == device)
        & (latest["stage"] == stage)
        & (latest["status"] == "ok")
        & latest["median_ms"].notna()
        & (latest["model"] == workload["model"])
        & (latest["batch_size"] == workload["batch_size"])
        & (latest["cfg"] == workload["cfg"])
    ]
    if stage != "text_encoder":
        rows = rows[(rows["height"] == workload["height"]) & (rows["width"] == workload["width"])]
    return rows


def _fastest_row(
    latest: pd.DataFrame, best: pd.DataFrame, device: str, workload: dict, stage: str
) -> pd.Series | None:
    candidates = _stage_rows(latest, device, workload, stage)
    picks = best[best["cell_id"].isin(candidates["cell_id"]) & best["median_ms"].notna()]
    if picks.empty:
        return None
    cell_id = picks.sort_values("median_ms").iloc[0]["cell_id"]
    return candidates[candidates["cell_id"] == cell_id].iloc[0]


def _compose(rows: dict[str, pd.Series | None], steps: int, batch: int) -> Image | None:
    if any(row is None or row.get("outlier_reason") is not None for row in rows.values()):
        return None
    calls = {"text_encoder": 1, "unet": steps, "vae_decode": 1}
    seconds = sum(calls[s] * float(rows[s]["median_ms"]) for s in STAGES) / 1000.0 / batch
    energies = call_energy_j(pd.DataFrame([rows[s] for s in STAGES]))
    energy = None if energies.isna().any() else float(energies.to_numpy() @ [1, steps, 1]) / batch
    settings = {s: _setting(rows[s]) for s in STAGES}  # type: ignore[arg-type]
    return Image(seconds, energy, settings)


def _setting(row: pd.Series) -> str:
    extra = "" if row.get("compile") in (None, "none") else f" compile={row['compile']}"
    levers = describe_levers(*(row.get(k) or "none" for k in ("memory", "quant", "cache")))
    return f"{row['precision']} {row['attention']}{extra} {levers}".strip()


def _unet_speedup(best: pd.DataFrame, device: str, workload: dict):
    rows = best[
        (best["device"] == device)
        & (best["stage"] == "unet")
        & (best["model"] == workload["model"])
        & (best["height"] == workload["height"])
        & (best["width"] == workload["width"])
        & (best["batch_size"] == workload["batch_size"])
        & best["speedup"].notna()
    ]
    if rows.empty:
        return None
    row = rows.iloc[0]
    low, high = row.get("speedup_ci95_low"), row.get("speedup_ci95_high")
    return (
        float(row["speedup"]),
        None if pd.isna(low) else float(low),
        None if pd.isna(high) else float(high),
    )


def _add_gpu_picks(
    result: DeviceAnswers,
    latest: pd.DataFrame,
    calibration: Calibration | None,
    corrections: dict[str, GpuCorrection] | None,
) -> None:
    """Three GPUs against this device (cheapest good value, a mid pick, the fastest), per tier."""
    from sdbench.analysis.recommend import recommend
    from sdbench.analysis.workload import ImageWorkload

    try:
        workload = ImageWorkload.usual(
            result.model, result.height, result.width, result.batch_size,
            steps=result.steps, cfg=result.cfg,
        )  # fmt: skip
        answer = recommend(workload, latest, calibration=calibration, corrections=corrections)
        table = answer.table
    except SdbenchError as error:
        result.notes.append(f"No GPU comparison: {error}")
        return
    picks = table[table["gpu"].notna() & (table["criterion"] != "cpu")]
    for tier, rows in picks.groupby("tier", sort=False):
        by = rows.set_index("criterion")
        result.budget_picks.append(
            {
                "tier": tier,
                **{c: by.loc[c].to_dict() for c in ("fastest", "best_value") if c in by.index},
            }
        )
    # A purchase question: cards without a street price (datacenter parts) are not picks here.
    priced = picks[picks["price_usd"].notna()]
    unique = priced.drop_duplicates("gpu").sort_values("price_usd")
    chosen = _three(unique)
    result.gpu_picks = [row.to_dict() for _, row in chosen.iterrows()]


def _three(unique: pd.DataFrame) -> pd.DataFrame:
    """The cheapest pick, the fastest pick, and the one priced between them."""
    if len(unique) <= 3:
        return unique
    fastest = unique.loc[unique["s_per_image"].idxmin()]
    cheapest = unique.iloc[0]
    middle = unique.iloc[len(unique) // 2]
    chosen = pd.DataFrame([cheapest, middle, fastest]).drop_duplicates("gpu")
    return chosen.sort_values("price_usd")
