"""The "this machine" row of a recommendation: the CPU's own measured figures for a workload.

"Do I need a GPU?" answered with numbers: the CPU at its fastest measured setting, from a
`pipeline` cell at the workload's steps, else one call composed from its stage rows
(analysis/per_image.py), else its UNet steps alone; the note says which. Results from several
machines give one row per machine (the latest run of each of its cells).
"""

from __future__ import annotations

import pandas as pd

from sdbench.analysis.predict import same_workload, stage_median
from sdbench.analysis.workload import ImageWorkload
from sdbench.levers import describe as describe_levers
from sdbench.machine import latest_per_series, machine_names


def measured_cpus(results: pd.DataFrame | None, workload: ImageWorkload) -> list[dict]:
    """One "this machine" row per machine whose CPU measured the workload, fastest first."""
    if results is None or results.empty:
        return []
    latest = latest_per_series(results)
    cpu_rows = latest[latest["device"].astype(str).str.startswith("cpu")]
    names = machine_names(cpu_rows) if len(cpu_rows) else {}
    answers = []
    for machine, rows in cpu_rows.groupby("machine_id", sort=True):
        answer = measured_cpu(rows, workload)
        if answer is not None and len(names) > 1:
            answer["note"] += f" ({names[str(machine)]})"
        answers += [answer] if answer is not None else []
    return sorted(answers, key=lambda answer: answer["s_per_image"])


def measured_cpu(results: pd.DataFrame | None, workload: ImageWorkload) -> dict | None:
    """This machine's CPU for the workload, from measured rows only (the "do I need a GPU?" row).

    The CPU at its fastest measured setting (any precision and attention): a pipeline cell at the
    workload's steps, else one image composed from its stage rows (analysis/per_image.py), else
    the UNet steps alone, said so in the note.
    """
    if results is None or results.empty:
        return None
    rows = results[
        same_workload(results, workload) & results["device"].astype(str).str.startswith("cpu")
    ]
    if rows.empty:
        return None
    best = _fastest_cpu_call(rows, workload)
    if best is None:
        return None
    image_s, setting, how = best
    name = (
        rows["cpu_model"].dropna().iloc[0]
        if rows["cpu_model"].notna().any()
        else "this machine's CPU"
    )
    unet = rows[(rows["stage"] == "unet") & rows["it_per_s"].notna()]
    energy = stage_median(rows, "pipeline", "energy_per_image_j")
    return {
        "gpu": f"CPU: {name}", "it_per_s": float(unet["it_per_s"].max()) if len(unet) else None,
        "image_s": image_s, "s_per_image": image_s / workload.batch_size,
        "images_per_s": workload.batch_size / image_s, "images_per_min": 60.0 * workload.batch_size / image_s,
        "peak_vram_bytes": stage_median(rows, "pipeline", "peak_rss_bytes"),
        "fits": True, "energy_per_image_j": energy, "source": "measured", "precision": setting,
        "note": "measured on this machine" + how,
    }  # fmt: skip


def _fastest_cpu_call(rows: pd.DataFrame, workload: ImageWorkload) -> tuple[float, str, str] | None:
    """(seconds per call, "precision attention", how it was measured) of the fastest setting."""
    from sdbench.analysis.per_image import per_image_figures

    pipeline = rows[(rows["stage"] == "pipeline") & rows["median_ms"].notna()]
    if len(pipeline):
        best = pipeline.loc[pipeline["median_ms"].idxmin()]
        return float(best["median_ms"]) / 1000.0, _setting(best), _decode_note(best)
    composed = per_image_figures(rows, steps=workload.steps)
    if len(composed):
        best = composed.loc[composed["image_ms"].idxmin()]
        call_s = float(best["image_ms"]) * workload.batch_size / 1000.0
        how = " (one call composed from the stage rows)" + _decode_note(best)
        return call_s, _setting(best), how
    unet = rows[(rows["stage"] == "unet") & rows["it_per_s"].notna()]
    if unet.empty:
        return None
    best = unet.loc[unet["it_per_s"].idxmax()]
    note = " (UNet steps only; text encoder and VAE not included)"
    return workload.steps / float(best["it_per_s"]), _setting(best), note


def _setting(row: pd.Series) -> str:
    levers = describe_levers(*(row.get(k) or "none" for k in ("memory", "quant", "cache")))
    return f"{row['precision']} {row.get('attention') or 'sdpa'} {levers}".strip()


def _decode_note(row: pd.Series) -> str:
    """A tiny autoencoder decodes differently from the full VAE the GPU rows assume: say so."""
    vae = row.get("vae")
    return f" (decoded with {vae})" if isinstance(vae, str) and vae != "default" else ""
