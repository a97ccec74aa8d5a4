"""Per-image figures: one image's time and energy at a model's usual step count, from stage rows.

One image = (text_encoder + steps x unet + vae_decode) / batch_size, each term the median of the
ok rows of that stage for the same model, device, precision, resolution, batch and settings.
The unet rows already include classifier-free guidance when the cells ran with cfg. Energy per
call is avg_power_w x median time (null where the device reports no power). Where a measured
`pipeline` cell exists for the same configuration, the stage sum is also composed at that cell's
step count and compared with it (`pipeline_rel_err`): the scheduler and guidance arithmetic the
stage rows leave out are the difference.
"""

from __future__ import annotations

import pandas as pd

from sdbench.models.registry import MODELS

STAGES = ("text_encoder", "unet", "vae_decode")
CONFIG_KEYS = (
    "machine_id",  # stage rows of two machines never compose one image
    "machine",
    "model",
    "device",
    "device_name",
    "precision",
    "height",
    "width",
    "batch_size",
    "cfg",
    "vae",
    "attention",
    "compile",
    "channels_last",
    "weights",
    "memory",
    "quant",
    "cache",
)
COLUMNS = [
    "steps",
    "usual_settings",
    "text_encoder_ms",
    "unet_ms",
    "vae_decode_ms",
    "image_ms",
    "image_s",
    "images_per_s",
    "energy_per_image_j",
    "pipeline_steps",
    "pipeline_image_ms",
    "composed_pipeline_image_ms",
    "pipeline_rel_err",
]


def per_image_figures(frame: pd.DataFrame, steps: int | None = None) -> pd.DataFrame:
    """One row per configuration with all three stages measured ok; `steps` overrides the usual."""
    keys = [k for k in CONFIG_KEYS if k in frame.columns]
    ok = frame[frame["status"] == "ok"] if "status" in frame.columns else frame
    ok = ok[ok["median_ms"].notna()]
    if ok.empty:
        return pd.DataFrame(columns=keys + COLUMNS)
    ok = ok.assign(call_energy_j=call_energy_j(ok).astype(float))  # object when no power column
    per_stage = (
        ok.groupby(keys + ["stage"], dropna=False)
        .agg(
            median_ms=("median_ms", "median"),
            call_energy_j=("call_energy_j", "median"),
            run_steps=("steps", "max") if "steps" in ok.columns else ("median_ms", "size"),
            energy_rows=("call_energy_j", "count"),
            rows=("median_ms", "size"),
        )
        .reset_index()
    )
    # A stage's energy is unknown when any of its rows lacks one (a median with skipna=False,
    # computed this way: a Python median per group cost a fleet ~0.3 s).
    complete = per_stage.pop("energy_rows") == per_stage.pop("rows")
    per_stage["call_energy_j"] = per_stage["call_energy_j"].where(complete)
    per_stage = _text_encoder_at_every_size(per_stage, keys)
    rows = [
        _compose(dict(zip(keys, group_key, strict=True)), by_stage, steps)
        for group_key, by_stage in _stages_per_config(per_stage, keys)
    ]
    rows = [row for row in rows if row is not None]
    return pd.DataFrame(rows, columns=keys + COLUMNS)


def _stages_per_config(per_stage: pd.DataFrame, keys: list[str]) -> list[tuple[tuple, dict]]:
    """(configuration key, {stage: its figures}) per configuration, in groupby's sorted order.

    Plain dicts, not a DataFrame per configuration: a fleet has hundreds, and indexing each
    cost more than composing them.
    """
    grouped = per_stage.groupby(keys, dropna=False)
    figures = per_stage[["stage", "median_ms", "call_energy_j", "run_steps"]].to_dict("records")
    stages: list[dict] = [{} for _ in range(grouped.ngroups)]
    for group, row in zip(grouped.ngroup().tolist(), figures, strict=True):
        stages[group][row["stage"]] = row
    return list(zip(grouped.size().index, stages, strict=True))


def _text_encoder_at_every_size(per_stage: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Lend a text encoder row to the image sizes that lack one: 77 tokens whatever the size.

    Suites measure the text encoder at one resolution (quick.toml); without this, images at the
    other sizes could not be composed.
    """
    size = [k for k in ("height", "width") if k in keys]
    rest = [k for k in keys if k not in size]
    encoders = per_stage[per_stage["stage"] == "text_encoder"]
    if encoders.empty or not size:
        return per_stage
    others = per_stage[per_stage["stage"] != "text_encoder"][keys].drop_duplicates()
    missing = others.merge(encoders[keys], on=keys, how="left", indicator=True)
    missing = missing[missing["_merge"] == "left_only"][keys]
    lent = encoders.drop(columns=size).groupby(rest, dropna=False).first().reset_index()
    # A key null in every encoder row comes back float (NaN) from the groupby, while the other
    # stages' rows may hold values there too (a run with the column beside files without it):
    # merge such keys as objects, which match null with null as the float keys did.
    mixed = {k: object for k in rest if missing[k].dtype != lent[k].dtype}
    borrowed = missing.astype(mixed).merge(lent.astype(mixed), on=rest, how="inner")
    return pd.concat([per_stage, borrowed[per_stage.columns]], ignore_index=True)


def call_energy_j(rows: pd.DataFrame) -> pd.Series:
    if "avg_power_w" not in rows.columns:
        return pd.Series(float("nan"), index=rows.index)
    return rows["avg_power_w"] * rows["median_ms"] / 1000.0


def _compose(config: dict, by_stage: dict[str, dict], steps: int | None) -> dict | None:
    if not all(stage in by_stage for stage in STAGES):
        return None
    spec = MODELS.get(config["model"])
    usual_steps = spec.default_steps if spec is not None else None
    image_steps = steps or usual_steps
    if image_steps is None:
        return None
    batch = config["batch_size"]
    ms = {stage: float(by_stage[stage]["median_ms"]) for stage in STAGES}
    energy = {stage: float(by_stage[stage]["call_energy_j"]) for stage in STAGES}
    image_ms = _stage_sum(ms, image_steps) / batch
    energy_j = _stage_sum(energy, image_steps) / batch
    row = {
        **config,
        "steps": image_steps,
        "usual_settings": spec is not None
        and image_steps == usual_steps
        and bool(config.get("cfg", spec.default_cfg)) == spec.default_cfg,
        **{f"{stage}_ms": ms[stage] for stage in STAGES},
        "image_ms": image_ms,
        "image_s": image_ms / 1000.0,
        "images_per_s": 1000.0 / image_ms if image_ms > 0 else None,
        "energy_per_image_j": energy_j if energy_j == energy_j else None,  # NaN: not measured
    }
    row.update(_pipeline_check(by_stage, ms, batch))
    return row


def _stage_sum(per_call: dict[str, float], steps: int) -> float:
    return per_call["text_encoder"] + steps * per_call["unet"] + per_call["vae_decode"]


def _pipeline_check(by_stage: dict[str, dict], ms: dict[str, float], batch: int) -> dict:
    """The measured pipeline cell per image, and the stage sum at its step count."""
    if "pipeline" not in by_stage:
        return {
            "pipeline_steps": None,
            "pipeline_image_ms": None,
            "composed_pipeline_image_ms": None,
            "pipeline_rel_err": None,
        }
    pipeline_steps = int(by_stage["pipeline"]["run_steps"])
    measured = float(by_stage["pipeline"]["median_ms"]) / batch
    composed = _stage_sum(ms, pipeline_steps) / batch
    return {
        "pipeline_steps": pipeline_steps,
        "pipeline_image_ms": measured,
        "composed_pipeline_image_ms": composed,
        "pipeline_rel_err": composed / measured - 1.0,
    }
