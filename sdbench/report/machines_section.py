"""The report's "Machines" section: results from several machines side by side (analysis/fleet.py).

Rendering only: every figure comes from `sdbench.analysis.fleet`.
"""

from __future__ import annotations

import math

import pandas as pd

from sdbench import units
from sdbench.analysis.fleet import Fleet
from sdbench.report import plots
from sdbench.report.plots import SERIES_COLORS, Plot, figure_svg
from sdbench.report.tables import Table, frame_table, same_name

MAX_BAR_CHARTS = 6
# Columns of the shared table and bars per chart: more machines than this and the baseline, the
# fastest and the slowest stand for the rest (the Machines table lists every machine).
MAX_SHOWN_MACHINES = 9
SHOWN_EACH_WAY = 4
SLANT_DEGREES = 20  # machine labels under the bars
SLANT = math.sin(math.radians(SLANT_DEGREES))
LABEL_CHARACTER_IN = 0.62 * 7 / 72  # a 7 pt character's width, generously
TITLE_AND_TICKS_IN = 0.45  # the ticks and a label's own height, then the next row's title
MACHINE_COLUMNS = [
    ("machine", "machine", None),
    ("device", "device_name", None),
    ("GPUs", "gpu_count", units.COUNT),
    *same_name("host", "torch"),
    ("CUDA/ROCm", "cuda", None),
    ("driver", "driver", None),
    ("runs", "runs", units.COUNT),
    ("ok cells", "ok", units.COUNT),
    ("shared with baseline", "shared_with_baseline", units.COUNT),
    ("speed vs baseline (×)", "relative_speed", units.PLAIN),
    ("slowest cell (×)", "relative_speed_min", units.PLAIN),
    ("fastest cell (×)", "relative_speed_max", units.PLAIN),
    ("machine_id", "machine_id", None),
]
PREDICTION_COLUMNS = [
    ("machine", "machine", None),
    ("catalogue GPU", "gpu", None),
    ("cell", "label", None),
    ("measured it/s", "measured_it_per_s", units.PLAIN),
    ("predicted it/s", "predicted_it_per_s", units.PLAIN),
    ("prediction error (%)", "error_pct", units.PLAIN),
    ("model's usual error (±%)", "model_error_pct", units.PLAIN),
]


def machines_section(view: Fleet | None, with_plots: bool = True):
    """The Machines section, or None when every row comes from one host's devices."""
    from sdbench.report.sections import Section  # sections imports this module

    if view is None:
        return None
    baseline = view.machines.loc[view.machines["baseline"], "machine"].iloc[0]
    section = Section("machines", "Machines")
    section.intro = (
        f"{len(view.machines)} machines. Speed is against the baseline machine {baseline} "
        "(--baseline-machine chooses another): per machine, the geometric mean over the cells it "
        "shares with the baseline of baseline median / its median, so above 1× is faster; the "
        "slowest and fastest cell bound it. A machine is a device on a host with its torch, "
        "CUDA/ROCm and driver: change any of them and it is another machine."
    )
    section.tables = [
        frame_table(view.machines, "Machines", MACHINE_COLUMNS, anchor="machines-table"),
        shared_table(view),
    ]
    if len(view.predictions):
        caption = (
            "The performance model's denoiser it/s for each catalogue GPU measured here, from its "
            "reference calibration alone (not these results), beside the measurement: "
            "(predicted − measured) / measured."
        )
        title = "Predicted beside measured"
        section.tables.append(
            frame_table(view.predictions, title, PREDICTION_COLUMNS, caption, "machines-predicted")
        )
    shown_note = shown_machines(view)[1] if not view.shared.empty else ""
    if shown_note:
        section.notes.append(f"Shared cells: {shown_note}")
    if view.shared.empty:
        section.notes.append(
            "No cell ran ok on more than one machine, so none is compared side by side."
        )
    elif with_plots:
        section.plots = [machine_bars(view)]
    return section


def shown_machines(view: Fleet) -> tuple[list[str], str]:
    """The machines the shared table and bar charts show, in order, and a note on the rest.

    Every machine when there are at most MAX_SHOWN_MACHINES; else the baseline and the
    SHOWN_EACH_WAY fastest and slowest against it (the range a buyer weighs), fastest first.
    """
    machines = view.machines[view.machines["machine"].isin(set(view.shared["machine"]))]
    if len(machines) <= MAX_SHOWN_MACHINES:
        return list(machines["machine"]), ""
    others = machines[~machines["baseline"]]
    ranked = others[others["relative_speed"].notna()].sort_values(
        ["relative_speed", "machine"], ascending=[False, True], kind="stable"
    )
    picked = list(ranked["machine"].iloc[:SHOWN_EACH_WAY])
    picked += [m for m in ranked["machine"].iloc[-SHOWN_EACH_WAY:] if m not in picked]
    baseline = list(machines.loc[machines["baseline"], "machine"])
    rest = len(machines) - len(baseline) - len(picked)
    note = (
        f"{len(baseline) + len(picked)} of {len(machines)} machines shown: the baseline and the "
        f"{SHOWN_EACH_WAY} fastest and {SHOWN_EACH_WAY} slowest against it; the other {rest} "
        "are in the Machines table, every figure in results.csv."
    )
    return baseline + picked, note


def shared_table(view: Fleet) -> Table:
    """One row per shared cell, one column per shown machine: median latency and its 95% CI."""
    shared = view.shared
    if shared.empty:
        return Table("Shared cells", [], [])
    unit = units.time_unit(shared["median_ms"])
    shared = shared.assign(text=_cell_texts(view, unit))
    wide = shared.pivot_table(index=["cell_id", "label"], columns="machine", values="text",
                              aggfunc="first", sort=False).reset_index()  # fmt: skip
    order, note = shown_machines(view)
    columns = [("cell", "label", None)] + [(m, m, None) for m in order]
    caption = (
        f"Median per call ({unit.label}) with its 95% CI, latest run of each cell on each machine, "
        "and its speed against the baseline machine (above 1× is faster); – where a machine did "
        "not run the cell ok."
    )
    return frame_table(wide, "Shared cells", columns, caption, "machines-shared")


def _cell_texts(view: Fleet, unit: units.Unit) -> list[str]:
    """Per shared row: "median [low–high]", then " · ratio×" against the baseline's median."""
    shared = view.shared
    on_baseline = shared[shared["machine_id"] == view.baseline]
    baseline_ms = shared["cell_id"].map(on_baseline.set_index("cell_id")["median_ms"])
    ratios = (baseline_ms / shared["median_ms"]).where(shared["machine_id"] != view.baseline)
    texts = []
    for median, low, high, ratio in zip(shared["median_ms"], shared["ci95_low_ms"],
                                        shared["ci95_high_ms"], ratios, strict=True):  # fmt: skip
        low, high = units.as_number(low), units.as_number(high)
        text = unit.show(median)
        if low is not None and high is not None:
            text += f" [{unit.show(low)}–{unit.show(high)}]"
        texts.append(text if pd.isna(ratio) else f"{text} · {float(ratio):.2f}×")
    return texts


@plots._styled
def machine_bars(view: Fleet) -> Plot:
    """One bar chart per shared cell (workload): a bar per shown machine, whiskers the 95% CI."""
    anchor, title = "plot-machines", "Shared cells across machines"
    cells = list(dict.fromkeys(view.shared["cell_id"]))[:MAX_BAR_CHARTS]
    shown, note = shown_machines(view)
    rows = view.shared[view.shared["cell_id"].isin(cells) & view.shared["machine"].isin(shown)]
    # One pivot per figure: a row per cell, a column per machine, in the order shown.
    wide = rows.pivot(index="cell_id", columns="machine")
    labels = rows.drop_duplicates("cell_id").set_index("cell_id")["label"]
    colors = {
        m: SERIES_COLORS[i % len(SERIES_COLORS)] for i, m in enumerate(view.machines["machine"])
    }
    # Slanted machine labels hang under each row of bars: room for the longest before the next.
    longest_in = max(map(len, shown), default=0) * LABEL_CHARACTER_IN
    figure, axes = plots._grid(len(cells), row_gap_in=longest_in * SLANT + TITLE_AND_TICKS_IN)
    for axis, cell in zip(axes, cells, strict=True):
        medians = wide.loc[cell, "median_ms"].reindex(shown).dropna().astype(float)
        present = list(medians.index)
        low = (
            (medians - wide.loc[cell, "ci95_low_ms"][present].astype(float)).clip(lower=0).fillna(0)
        )
        high = (
            (wide.loc[cell, "ci95_high_ms"][present].astype(float) - medians)
            .clip(lower=0)
            .fillna(0)
        )
        axis.bar(range(len(present)), medians, color=[colors[m] for m in present],
                 yerr=[low, high], capsize=3)  # fmt: skip
        axis.set_xticks(range(len(present)))
        axis.set_xticklabels(present, rotation=SLANT_DEGREES, ha="right", fontsize=7)
        plots._set_title(axis, labels[cell], fontsize=8)
        axis.set_ylabel("median latency per call (ms)")
    caption = (
        "Median latency per call of each cell several machines ran, one bar per machine; whiskers "
        "are the 95% CI of the median. Lower is faster."
    )
    caption += f" {note}" if note else ""
    return Plot(anchor, title, caption, figure_svg(figure, anchor))
