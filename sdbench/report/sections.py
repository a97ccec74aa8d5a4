"""Assemble the report's sections from one `Analysis`: which tables, plots and notes go where.

Rendering only: every figure comes from `sdbench.analysis.analysis.analyse`, computed once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from sdbench import units
from sdbench.analysis.analysis import Analysis, History, WorkloadPicks
from sdbench.machine import machines_share_a_device
from sdbench.report import plots
from sdbench.report.answers import answers_section
from sdbench.report.machines_section import machines_section
from sdbench.report.tables import Table, frame_table, matrix_table, same_name
from sdbench.store.schema import STATUSES

MAX_HISTORY_CELLS = 8
ENVIRONMENT = (
    "host",
    "os",
    "cpu_model",
    "python",
    "torch",
    "diffusers",
    "cuda",
    "driver",
    "sdbench_version",
    "git_sha",
)


@dataclass
class Section:
    anchor: str
    title: str
    intro: str = ""
    facts: list[tuple[str, str]] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    plots: list[plots.Plot] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    answers: list = field(default_factory=list)  # report.answers.Answer, shown before the tables
    folds: list[Fold] = field(default_factory=list)  # one line each, details collapsed


@dataclass
class Fold:
    """One line that stands for many (a kind of warning and its count), its table collapsed."""

    summary: str
    table: Table


@dataclass
class Page:
    title: str
    subtitle: str
    sections: list[Section]
    downloads: list[tuple[str, str]]


def build_page(
    analysis: Analysis,
    downloads: list[tuple[str, str]],
    title: str | None = None,
    with_plots: bool = True,
) -> Page:
    """Every section of the report of this analysis, in reading order; plots only when asked."""
    frame, latest = analysis.frame, analysis.latest
    suites = sorted(frame["suite"].dropna().astype(str).unique())
    title = title or "sdbench report · " + ", ".join(suites or ["unnamed suite"])
    started = pd.to_datetime(frame["started_at"], utc=True).dropna()
    span = (
        ""
        if started.empty
        else f"Runs from {started.min():%Y-%m-%d %H:%M} to {started.max():%Y-%m-%d %H:%M} UTC"
    )
    # Answers first; the sections after it are reference material, in reading order. A new
    # section goes in this list where a reader would look for it.
    sections = [
        answers_section(analysis.answers),
        machines_section(analysis.fleet, with_plots),
        overview_section(frame, analysis.outliers),
        matrix_section(latest),
        plots_section(latest, analysis.compile_gains) if with_plots else None,
        fastest_section(analysis.fastest, analysis.precision_gains),
        levers_section(analysis.levers, analysis.lever_summary, with_plots),
        per_image_section(analysis.per_image),
        which_gpu_section(analysis.recommendations, analysis.workloads_not_shown),
        serving_section(analysis),
        history_section(analysis.history, with_plots),
    ]
    return Page(title, span, [s for s in sections if s is not None], downloads)


def serving_section(analysis: Analysis) -> Section | None:
    from sdbench.report.serving import serving_section as section

    return section(analysis.latest, analysis.capacity)


def overview_section(frame: pd.DataFrame, outliers: pd.DataFrame) -> Section:
    devices = sorted(frame["device_name"].fillna(frame["device"]).dropna().astype(str).unique())
    counts = frame["status"].value_counts()
    facts = [
        ("runs", str(frame["run_id"].nunique())),
        ("cells", str(len(frame))),
        ("devices", ", ".join(devices) or "–"),
        *((status, str(int(counts.get(status, 0)))) for status in STATUSES),
    ]
    section = Section("overview", "Overview", facts=facts)
    section.folds = warning_folds(frame, outliers)
    section.tables = [runs_table(frame), environment_table(frame), not_ok_table(frame)]
    section.tables = [t for t in section.tables if t.rows]
    return section


def runs_table(frame: pd.DataFrame) -> Table:
    columns = [
        ("run", "run_id", None),
        ("suite", "suite", None),
        ("started (UTC)", "started_at", None),
    ]
    columns += [("devices", "devices", None), ("cells", "cells", units.COUNT)]
    columns += [(status, status, units.COUNT) for status in STATUSES]
    return frame_table(_runs(frame), "Runs", columns, "Cells per run by outcome.", "runs")


def _runs(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per run, in order of first appearance then by start: its suite, devices and
    cells per outcome; grouped once, not filtered once per run (a fleet holds a thousand)."""
    runs = frame[frame["run_id"].notna()]
    if runs.empty:
        return pd.DataFrame()
    groups = runs.groupby("run_id", sort=False)
    order = groups.size().index
    # pytest-benchmark rows without an sdbench cell have no device
    devices = pd.DataFrame({"run_id": runs["run_id"],
                            "device": runs["device_name"].fillna(runs["device"])}).dropna()  # fmt: skip
    devices = devices.assign(device=devices["device"].astype(str)).drop_duplicates()
    devices = (
        devices.sort_values("device", kind="stable").groupby("run_id")["device"].agg(", ".join)
    )
    counts = groups["status"].value_counts().unstack(fill_value=0)
    table = pd.DataFrame(
        {
            "run_id": order,
            "suite": runs.drop_duplicates("run_id").set_index("run_id")["suite"].reindex(order),
            "started_at": [_timestamp(value) for value in groups["started_at"].min()],
            "devices": devices.reindex(order).fillna("–").replace("", "–"),
            "cells": groups.size(),
            **{
                s: counts.get(s, pd.Series(0, index=order)).reindex(order).astype(int)
                for s in STATUSES
            },  # fmt: skip
        },
        index=order,
    ).reset_index(drop=True)
    return table.sort_values("started_at")


def _timestamp(value: object) -> str:
    return "–" if value is None or pd.isna(value) else f"{pd.Timestamp(value):%Y-%m-%d %H:%M}"


def environment_table(frame: pd.DataFrame) -> Table:
    present = [name for name in ENVIRONMENT if name in frame]
    environments = frame[["device_name", *present]].astype("string").drop_duplicates().fillna("–")
    columns = [("device", "device_name", None)] + [(name, name, None) for name in present]
    return frame_table(
        environments, "Environments", columns, "Each distinct machine and software stack.", "envs"
    )


def warning_kind(warning: str) -> str:
    """What a warning is about, without the cell's own figures: "only N samples", "high spread"."""
    head = warning.split(":", 1)[0] if ":" in warning[:60] else warning.split(";", 1)[0]
    return re.sub(r"\d+(\.\d+)?", "N", head).strip()


def warning_folds(frame: pd.DataFrame, flagged: pd.DataFrame) -> list[Fold]:
    """One line per kind of warning (and of outlier flag: `flagged`, the latest rows analysis
    flagged, with their `outlier_reason`) with its cell count; details collapsed."""
    labels = device_cell_labels(frame) if len(frame) else pd.Series(dtype=str)
    exploded = frame[["warnings", "cell_id"]].assign(label=labels).explode("warnings")
    exploded = exploded[exploded["warnings"].notna()]
    outliers = pd.DataFrame(
        {
            "warnings": "outlier, left out of speed-up claims: " + flagged["outlier_reason"],
            "cell_id": flagged["cell_id"],
            "label": device_cell_labels(flagged) if len(flagged) else [],
        }
    )
    every = pd.concat([exploded, outliers], ignore_index=True)
    if every.empty:
        return []
    every["kind"] = every["warnings"].map(warning_kind)
    folds = []
    columns = [("cell", "label", None), ("warning", "warnings", None)]
    for kind, rows in sorted(every.groupby("kind"), key=lambda item: -item[1]["cell_id"].nunique()):
        count = rows["cell_id"].nunique()
        summary = f"{count} cell{'s' if count != 1 else ''}: {kind}"
        table = frame_table(rows.drop_duplicates(["cell_id", "warnings"]), kind, columns)
        folds.append(Fold(summary, table))
    return folds


def not_ok_table(frame: pd.DataFrame) -> Table:
    failed = frame[frame["status"] != "ok"]
    # Assigning a Series to an empty frame adopts the Series' index: label only the failed rows.
    failed = failed.assign(label=device_cell_labels(failed) if len(failed) else [])
    columns = [
        ("status", "status", None),
        ("cell", "label", None),
        ("run", "run_id", None),
        ("reason", "error", None),
    ]
    caption = "An out-of-memory cell is a finding: that configuration does not fit the device."
    return frame_table(
        failed.sort_values(["status", "label"]),
        "Cells that did not finish ok",
        columns,
        caption,
        "not-ok",
    )


def device_cell_labels(frame: pd.DataFrame) -> pd.Series:
    """A short readable name per row, device first (a report table's rows mix devices); not
    `compare.cell_labels`, the `Cell.label()` text that history and the fleet view use."""
    columns = ("device", "model", "stage", "width", "height", "batch_size", "precision",
               "attention", "compile")  # fmt: skip
    labels = [
        f"{device} {model} {stage} {width}×{height} b{batch} {precision} {attention}"
        + ("" if compile_mode in (None, "none") else f" compile={compile_mode}")
        for device, model, stage, width, height, batch, precision, attention, compile_mode in zip(
            *(frame[column].tolist() for column in columns), strict=True
        )
    ]
    return pd.Series(labels, index=frame.index, dtype=object)


def matrix_section(latest: pd.DataFrame) -> Section:
    section = Section(
        "matrix", "Matrix", "Every cell, latest run of each. Units are chosen per column."
    )
    order = ["device", "width", "height", "batch_size", "precision", "attention", "compile"]
    if machines_share_a_device(latest):
        order.insert(0, "machine")
    else:  # the device column tells the machines apart
        latest = latest.drop(columns=["machine"])
    for (model, stage), rows in latest.groupby(["model", "stage"], sort=True):
        section.tables.append(
            matrix_table(rows.sort_values(order, kind="stable"), str(model), str(stage))
        )
    return section


def plots_section(latest: pd.DataFrame, compile_gains: pd.DataFrame) -> Section:
    figures = [
        plots.latency_vs_resolution(latest),
        plots.throughput_vs_batch(latest),
        plots.memory_vs_resolution(latest),
        plots.attention_precision_bars(latest),
        plots.roofline(latest),
        plots.attention_precision_bars(latest, metric="energy_per_image_j"),
        plots.compile_time_vs_gain(compile_gains),
    ]
    section = Section("plots", "Plots", plots=[p for p in figures if p.svg])
    section.notes = [f"{p.title}: not drawn. {p.skipped}" for p in figures if p.skipped]
    return section


FASTEST_COLUMNS = [
    ("device", "device_name", None),
    *same_name("model", "stage"),
    *same_name("width", "height", unit=units.COUNT),
    ("batch", "batch_size", units.COUNT),
    *same_name("precision", "attention", "compile", "memory", "quant", "cache"),
    ("median", "median_ms", units.Unit("ms")),
    ("default", "default_precision", None),
    ("default median", "default_median_ms", units.Unit("ms")),
    ("speed-up (×)", "speedup", units.PLAIN),
    ("95% CI low", "speedup_ci95_low", units.PLAIN),
    ("95% CI high", "speedup_ci95_high", units.PLAIN),
    ("fidelity checked", "fidelity_checked", None),
    ("candidates", "candidates", units.COUNT),
    ("outliers left out", "outliers", units.COUNT),
    ("why none", "reason", None),
]
PRECISION_COLUMNS = [
    ("device", "device_name", None),
    *same_name("model", "stage", "precision"),
    ("pairs", "pairs", units.COUNT),
    ("speed-up over fp32 (×)", "speedup", units.PLAIN),
    ("95% CI low", "speedup_ci95_low", units.PLAIN),
    ("95% CI high", "speedup_ci95_high", units.PLAIN),
    ("fidelity", "fidelity", None),
    ("worth it?", "verdict", None),
]


def fastest_section(best: pd.DataFrame, gains: pd.DataFrame) -> Section:
    intro = (
        "Per workload, the fastest configuration that finished ok with passing fidelity (or fidelity not "
        "measured, marked in the table), and its speed-up over the plain default: sdpa attention, no compile, "
        "fp16 on GPUs (bf16 when fp16 did not run), fp32 on CPU. Same as `sdbench best`."
    )
    caption = (
        "A speed-up is missing when the plain default did not run ok for that workload, or was "
        "flagged as an outlier (see the warnings); flagged cells never win."
    )
    columns = _with_machine(best, FASTEST_COLUMNS)
    table = frame_table(best, "Fastest passing settings", columns, caption, "fastest-table")
    precision = frame_table(
        gains,
        "Is bf16/fp16 worth it here?",
        PRECISION_COLUMNS,
        "Per stage, over every pair of cells that differ only in precision (geometric mean, "
        "95% bootstrap CI); outliers never form a pair. Same as `sdbench best --by precision`.",
        "precision-gains",
    )
    return Section(
        "fastest", "Fastest settings", intro, tables=[t for t in (table, precision) if t.rows]
    )


LEVER_COLUMNS = [
    *same_name("device", "model", "stage"),
    *same_name("width", "height", unit=units.COUNT),
    ("batch", "batch_size", units.COUNT),
    ("steps", "steps", units.COUNT),
    ("precision", "precision", None),
    ("fastest lever", "speed_setting", None),
    ("its speed-up (×)", "speed_speedup", units.PLAIN),
    ("its memory (×)", "speed_memory_ratio", units.PLAIN),
    ("its error", "speed_ref_rel_err", units.PLAIN),
    ("leanest lever", "memory_setting", None),
    ("its speed-up (×)", "memory_speedup", units.PLAIN),
    ("its memory (×)", "memory_memory_ratio", units.PLAIN),
    ("its error", "memory_ref_rel_err", units.PLAIN),
    ("settings", "settings", units.COUNT),
    ("failing fidelity", "failing_fidelity", units.COUNT),
]
LEVER_SETTING_COLUMNS = [
    *same_name("device", "model", "stage"),
    ("width", "width", units.COUNT),
    ("batch", "batch_size", units.COUNT),
    *same_name("precision", "setting"),
    ("median", "median_ms", units.Unit("ms")),
    ("speed-up (×)", "speedup", units.PLAIN),
    ("peak", "peak_bytes", units.Unit("GiB", units.GIB)),
    ("memory (×)", "memory_ratio", units.PLAIN),
    ("measured as", "memory_source", None),
    ("error vs fp32", "ref_rel_err", units.PLAIN),
    ("tolerance", "fidelity_tolerance", units.PLAIN),
    ("fidelity passes", "fidelity_ok", None),
]


def levers_section(
    table: pd.DataFrame, summary: pd.DataFrame, with_plots: bool = True
) -> Section | None:
    """Which lever wins on speed and which on memory per model and stage, and their fidelity."""
    if (table["setting"] == "none").all():
        return None
    intro = (
        "Memory modes, quantisation schemes and step caches against the same workload with every "
        "lever off: speed-up = plain median / lever median, memory = lever peak / plain peak. "
        "Winners are chosen among settings whose fidelity passed its tolerance."
    )
    section = Section("levers", "Levers", intro)
    if not summary.empty:
        section.tables.append(
            frame_table(summary, "What each lever buys", LEVER_COLUMNS, "", "levers-table")
        )
    rows = table.sort_values(["device", "model", "stage", "width", "batch_size", "median_ms"])
    section.tables.append(
        frame_table(rows, "Every setting", LEVER_SETTING_COLUMNS, "", "lever-settings-table")
    )
    if with_plots:
        plot = plots.lever_tradeoff(table)
        section.plots = [plot] if plot.svg else []
        section.notes = [f"{plot.title}: not drawn. {plot.skipped}"] if plot.skipped else []
    return section


PER_IMAGE_COLUMNS = [
    ("device", "device_name", None),
    *same_name("model", "resolution"),
    ("batch", "batch_size", units.COUNT),
    *same_name("precision", "attention"),
    ("steps", "steps", units.COUNT),
    ("s / image", "image_s", units.Unit("s")),
    ("images/s", "images_per_s", units.PLAIN),
    ("J / image", "energy_per_image_j", units.PLAIN),
    ("composed vs measured pipeline", "pipeline_rel_err", units.PLAIN),
]


def per_image_section(figures: pd.DataFrame) -> Section | None:
    """One image at each model's usual step count, composed from its stage rows."""
    if figures.empty:
        return None
    figures = figures.assign(
        resolution=figures["width"].astype(str) + "×" + figures["height"].astype(str)
    )
    intro = (
        "Seconds and joules for one image at the model's usual step count (SD1.5 50 steps with cfg, "
        "SDXL-Turbo 1 without, LCM 4, SD3.5 28), composed from the text encoder, denoiser step and VAE "
        "rows of the same configuration (a text encoder row measured at one image size serves every "
        "size: 77 tokens whatever the image). Where a `pipeline` cell was measured too, the last "
        "column is (composed − measured) / measured at that cell's step count."
    )
    columns = _with_machine(figures, PER_IMAGE_COLUMNS)
    table = frame_table(figures, "One image", columns, "", "per-image-table")
    return Section("per-image", "Per image", intro, tables=[table])


def _with_machine(frame: pd.DataFrame, columns: list) -> list:
    """A leading machine column when the rows come from several machines."""
    return [("machine", "machine", None), *columns] if machines_share_a_device(frame) else columns


RECOMMEND_COLUMNS = [
    ("budget", "tier", None),
    ("criterion", "criterion", None),
    ("GPU", "gpu", None),
    ("source", "source", None),
    ("price", "price_usd", units.Unit("USD")),
    ("s/image", "s_per_image", units.Unit("s")),
    ("low", "s_per_image_low", units.Unit("s")),
    ("high", "s_per_image_high", units.Unit("s")),
    ("images/min", "images_per_min", units.PLAIN),
    ("peak VRAM", "peak_vram_bytes", units.Unit("GiB", units.GIB)),
    ("fits", "fits", None),
    ("energy/image", "energy_per_image_j", units.Unit("J")),
    ("per 1000 images", "cost_per_1000_usd", units.Unit("USD")),
    ("note", "note", None),
]


def which_gpu_section(recommendations: Sequence[WorkloadPicks], not_shown: int = 0) -> Section:
    from sdbench.analysis.predict import denoising_label

    section = Section("which-gpu", "Which GPU")
    section.intro = (
        "For each workload in these results (fp16, default settings, the steps and guidance it ran with): "
        "the GPU to pick per purchase budget, and this machine's CPU where it ran the workload. "
        "source says whether a figure was measured here or predicted by the performance model; "
        "low and high bound the prediction."
    )
    if not_shown:
        section.notes.append(
            f"{not_shown} more workloads are not shown: "
            "`sdbench recommend --model M --resolution R --results ...` answers for any of them."
        )
    for picks in recommendations:
        w = picks.workload
        denoising = denoising_label(int(w["steps"]), bool(w["cfg"]))
        name = f"{w['model']} {w['width']}×{w['height']} batch {w['batch_size']}, {denoising}"
        if picks.table is None:  # the model cannot answer for this workload: say so, per workload
            section.notes.append(f"{name}: no recommendation. {picks.error}")
            continue
        anchor = f"recommend-{len(section.tables)}"
        section.tables.append(frame_table(picks.table, name, RECOMMEND_COLUMNS, anchor=anchor))
    return section


def history_section(found: History | None, with_plots: bool = True) -> Section | None:
    """Series (a cell on one machine) that appear in several runs, their change points, the last pair."""
    if found is None:
        return None
    section = Section("history", "History")
    if not found.repeated:
        section.notes = [
            "Several runs were given but no cell appears in more than one run on the same "
            "machine, so there is no history."
        ]
        return section
    rows, changes = found.rows, found.change_points
    chosen = _history_cells(rows, changes)
    labels = dict(zip(rows["series_id"], _series_labels(rows), strict=True))
    if with_plots:
        section.plots = [plots.history_series(rows, {c: labels[c] for c in chosen}, changes)]
    if not changes.empty:
        section.tables.append(
            frame_table(changes, "Change points", CHANGE_COLUMNS, anchor="change-points")
        )
    else:
        section.notes.append("No change points: every repeated cell stayed at one level.")
    section.tables += _compare_tables(found, section.notes)
    return section


def _series_labels(rows: pd.DataFrame) -> pd.Series:
    """Cell labels, with the machine appended when the rows come from several machines."""
    labels = device_cell_labels(rows)
    if rows["machine_id"].nunique() > 1:
        labels = labels + " on " + rows["machine"].astype(str)
    return labels


def _history_cells(rows: pd.DataFrame, changes: pd.DataFrame | None) -> list[str]:
    """Series with change points first, then the rest by cell, at most MAX_HISTORY_CELLS.

    By cell, then machine: one cell's series on every machine sit together, rather than every
    series of the machine whose id sorts first.
    """
    flagged = (
        []
        if changes is None or "series_id" not in changes
        else list(dict.fromkeys(changes["series_id"]))
    )
    rest = sorted(set(rows["series_id"]) - set(flagged), key=lambda s: (s.split("/", 1)[1], s))
    return (flagged + rest)[:MAX_HISTORY_CELLS]


def _compare_tables(found: History, notes: list[str]) -> list[Table]:
    comparison = found.comparison
    if comparison is None:
        notes.append(str(found.comparison_note))
        return []
    notes += [*comparison.environment_warnings, *comparison.notes]
    table = comparison.table
    changed = table[table["verdict"] != "unchanged"]
    caption = (
        f"Run {found.current_run} against the previous run {found.baseline_run}: {len(changed)} "
        f"of {len(table)} cell × metric rows changed; unchanged rows are left out. Same as "
        "`sdbench compare`."
    )
    return [frame_table(changed, "Against the previous run", COMPARE_COLUMNS, caption, "compare")]


CHANGE_COLUMNS = [
    ("cell", "label", None),
    ("run", "run_id", None),
    ("started (UTC)", "started_at", None),
    *same_name("before", "after", unit=units.PLAIN),
    ("change (%)", "change_pct", units.PLAIN),
    ("runs before", "runs_before", units.COUNT),
    ("runs after", "runs_after", units.COUNT),
]
COMPARE_COLUMNS = [
    ("cell", "label", None),
    ("metric", "metric", None),
    *same_name("baseline", "current", unit=units.PLAIN),
    ("change (%)", "change_pct", units.PLAIN),
    ("p", "p_value", units.PLAIN),
    *same_name("verdict", "regression", "note"),
]
