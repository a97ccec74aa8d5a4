"""The report's first section: its answers, in words and two small tables, from analysis.answers.

Rendering only: every figure comes from `analysis.answers` (which composes `best`, `per_image`,
`outliers` and `recommend`), computed once in `analysis.analyse`; this module chooses words and units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from sdbench import units
from sdbench.analysis.answers import DeviceAnswers, Image
from sdbench.report.tables import Table, frame_table


@dataclass(frozen=True)
class Answer:
    """One question with its short answer and a line of detail."""

    question: str
    answer: str
    detail: str = ""


def answers_section(found: Sequence[DeviceAnswers]):
    """The "Answers" section, or one that says why these results answer nothing yet."""
    from sdbench.report.sections import Section

    section = Section("answers", "Answers")
    if not found:
        section.intro = (
            "No answers yet: no device has the text encoder, denoiser step and VAE decode of one "
            "model and size all finished ok. `sdbench run quick` measures them."
        )
        return section
    for device in found:
        section.answers += device_answers(device, prefix=len(found) > 1)
        section.tables += device_tables(device, prefix=len(found) > 1)
        section.notes += device.notes
    return section


def device_answers(device: DeviceAnswers, prefix: bool = False) -> list[Answer]:
    where = f"{device.device_name} ({device.device})"
    head = f"{where}: " if prefix else ""
    workload = (
        f"{device.model}, {device.width}×{device.height}, batch {device.batch_size}, "
        f"{device.steps} steps{'' if device.cfg else ' without cfg'}"
    )
    image = device.default or device.fastest
    out = [
        Answer(
            f"{head}One image here",
            _image_line(image) if image else "not composed (see the note below)",
            f"{workload} on {where}; {_settings(image) if image else ''}; "
            "composed from the stage cells (see Per image)",
        ),
        _fastest_answer(device, head),
        _gpu_answer(device, head),
    ]
    return out


def _image_line(image: Image) -> str:
    energy = "energy not measured here" if image.energy_j is None else _joules(image.energy_j)
    return f"{units.duration_text(image.seconds)} per image · {energy}"


def _fastest_answer(device: DeviceAnswers, head: str) -> Answer:
    question = f"{head}Fastest passing setting"
    if device.fastest is None:
        return Answer(question, "none: no stage has a passing cell", "")
    gain = device.gain
    if device.default is not None and device.fastest.settings == device.default.settings:
        gain_text = ": the plain default is the fastest that passes"
    elif gain is None:
        gain_text = " (no plain-default image to compare it with)"
    else:
        gain_text = f", {gain:.2f}× faster than the default"
    detail = (
        f"{_settings(device.fastest)}; no cell that failed fidelity or was flagged as an outlier"
    )
    if device.unet_speedup is not None:
        speedup, low, high = device.unet_speedup
        interval = "" if low is None or high is None else f" (95% CI {low:.2f}–{high:.2f})"
        detail += f"; denoiser step {speedup:.2f}×{interval}"
    return Answer(
        question, f"{units.duration_text(device.fastest.seconds)} per image{gain_text}", detail
    )


def _gpu_answer(device: DeviceAnswers, head: str) -> Answer:
    question = f"{head}Do I need a GPU?"
    here = device.fastest or device.default
    if here is None or not device.gpu_picks:
        return Answer(question, "no comparison (see the notes below)", "")
    fastest = min(device.gpu_picks, key=lambda pick: pick["s_per_image"])
    times = here.seconds / float(fastest["s_per_image"])
    verdict = (
        f"a {fastest['gpu']} ({fastest['source']}) takes {units.duration_text(fastest['s_per_image'])} "
        f"per image: {_times(times)} this device"
    )
    detail = (
        "three GPUs at three prices below, with the band the performance model's "
        "cross-validated error gives; source says measured or predicted"
    )
    return Answer(question, verdict, detail)


def _times(ratio: float) -> str:
    if ratio >= 1:
        return f"{ratio:,.0f}× faster than" if ratio >= 10 else f"{ratio:.1f}× faster than"
    return f"{1 / ratio:.1f}× slower than"


def device_tables(device: DeviceAnswers, prefix: bool = False) -> list[Table]:
    here = device.fastest or device.default
    head = f"{device.device_name} ({device.device}): " if prefix else ""
    tables = []
    if device.gpu_picks:
        picks = pd.DataFrame(device.gpu_picks)
        picks = picks.assign(
            gpu_source=picks["gpu"] + " · " + picks["source"].fillna("predicted"),
            band=[_band(r) for _, r in picks.iterrows()],
            vs_here=[
                None if here is None else here.seconds / float(s) for s in picks["s_per_image"]
            ],
        )
        columns = [
            ("GPU · source", "gpu_source", None),
            ("price", "price_usd", units.Unit("USD")),
            ("s / image", "s_per_image", units.Unit("s")),
            ("band", "band", None),
            ("× this device", "vs_here", units.PLAIN),
        ]
        tables.append(
            frame_table(
                picks,
                f"{head or 'This device '}against three GPUs",
                columns,
                anchor=_anchor(device, "gpus"),
            )
        )
    if device.budget_picks:
        tables.append(_budget_table(device, head))
    return tables


def _budget_table(device: DeviceAnswers, head: str) -> Table:
    rows = []
    for tier in device.budget_picks:
        fastest, value = tier.get("fastest") or {}, tier.get("best_value") or {}
        rows.append(
            {
                "tier": tier["tier"],
                "fastest": _pick_text(fastest),
                "value": _pick_text(value),
                "value_cost": value.get("cost_per_1000_usd"),
            }
        )
    columns = [
        ("budget", "tier", None),
        ("fastest (s / image)", "fastest", None),
        ("most images per dollar", "value", None),
        ("$ / 1000 images", "value_cost", units.Unit("USD")),
    ]
    caption = "Purchase prices are dated estimates; `sdbench recommend` has the full table."
    return frame_table(
        pd.DataFrame(rows),
        f"{head}best GPU per budget" if head else "Best GPU per budget",
        columns,
        caption,
        _anchor(device, "budget"),
    )


def _pick_text(pick: dict) -> str:
    if not pick.get("gpu"):
        return "–"
    return f"{pick['gpu']} · {pick.get('source') or 'predicted'} ({units.duration_text(pick['s_per_image'])})"


def _band(row: pd.Series) -> str:
    low, high = row.get("s_per_image_low"), row.get("s_per_image_high")
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return "–"
    return f"{units.duration_text(low)}–{units.duration_text(high)}"


def _anchor(device: DeviceAnswers, what: str) -> str:
    return f"answers-{what}-" + "".join(c if c.isalnum() else "-" for c in device.device)


def _settings(image: Image) -> str:
    """ "bf16 sdpa for the denoiser, fp32 sdpa for the rest", or one setting for all stages."""
    settings = image.settings
    if len(set(settings.values())) == 1:
        return f"{next(iter(settings.values()))} for every stage"
    unet = settings.get("unet")
    rest = sorted({v for k, v in settings.items() if k != "unet"})
    return f"{unet} for the denoiser, {' / '.join(rest)} for the text encoder and VAE"


def _joules(joules: float) -> str:
    return f"{joules / 1000:.2f} kJ per image" if joules >= 10_000 else f"{joules:.0f} J per image"
