"""The report's "Machines" section: results from several machines side by side (analysis/fleet.py).

Rendering only: every figure comes from `sdbench.analysis.fleet`.
"""

from __future__ import annotations

import pandas as pd

from sdbench import units
from sdbench.analysis.fleet import Fleet
from sdbench.report import plots
from sdbench.report.plots import SERIES_COLORS, Plot, figure_svg
from sdbench.report.tables import Table, frame_table, same_name

MAX_BAR_CHARTS = 6
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
    if view.shared.empty:
        section.notes.append(
            "No cell ran ok on more than one machine, so none is compared side by side."
        )
    elif with_plots:
        section.plots = [machine_bars(view)]
    return section


def shared_table(view: Fleet) -> Table:
    """One row per shared cell, one column per machine: median latency and its 95% CI."""
    shared = view.shared
    if shared.empty:
        return Table("Shared cells", [], [])
    unit = units.time_unit(shared["median_ms"])
    shared = shared.assign(text=[_cell_text(view, row, unit) for _, row in shared.iterrows()])
    wide = shared.pivot_table(index=["cell_id", "label"], columns="machine", values="text",
                              aggfunc="first", sort=False).reset_index()  # fmt: skip
    order = [m for m in view.machines["machine"] if m in wide.columns]
    columns = [("cell", "label", None)] + [(m, m, None) for m in order]
    caption = (
        f"Median per call ({unit.label}) with its 95% CI, latest run of each cell on each machine, "
        "and its speed against the baseline machine (above 1× is faster); – where a machine did "
        "not run the cell ok."
    )
    return frame_table(wide, "Shared cells", columns, caption, "machines-shared")


def _cell_text(view: Fleet, row: pd.Series, unit: units.Unit) -> str:
    low, high = units.as_number(row["ci95_low_ms"]), units.as_number(row["ci95_high_ms"])
    text = unit.show(row["median_ms"])
    if low is not None and high is not None:
        text += f" [{unit.show(low)}–{unit.show(high)}]"
    ratio = _vs_baseline(view, row) if row["machine_id"] != view.baseline else None
    return text if ratio is None else f"{text} · {ratio:.2f}×"


def _vs_baseline(view: Fleet, row: pd.Series) -> float | None:
    base = view.shared[
        (view.shared["cell_id"] == row["cell_id"]) & (view.shared["machine_id"] == view.baseline)
    ]
    return None if base.empty else float(base["median_ms"].iloc[0] / row["median_ms"])


@plots._styled
def machine_bars(view: Fleet) -> Plot:
    """One bar chart per shared cell (workload): a bar per machine, whiskers the 95% CI."""
    anchor, title = "plot-machines", "Shared cells across machines"
    cells = list(dict.fromkeys(view.shared["cell_id"]))[:MAX_BAR_CHARTS]
    machines = list(view.machines["machine"])
    figure, axes = plots._grid(len(cells))
    for axis, cell in zip(axes, cells, strict=True):
        rows = view.shared[view.shared["cell_id"] == cell].set_index("machine")
        present = [m for m in machines if m in rows.index]
        medians = rows.loc[present, "median_ms"].astype(float)
        low = (medians - rows.loc[present, "ci95_low_ms"].astype(float)).clip(lower=0).fillna(0)
        high = (rows.loc[present, "ci95_high_ms"].astype(float) - medians).clip(lower=0).fillna(0)
        colors = [SERIES_COLORS[machines.index(m) % len(SERIES_COLORS)] for m in present]
        axis.bar(range(len(present)), medians, color=colors, yerr=[low, high], capsize=3)
        axis.set_xticks(range(len(present)))
        axis.set_xticklabels(present, rotation=20, ha="right", fontsize=7)
        axis.set_title(rows["label"].iloc[0], fontsize=8)
        axis.set_ylabel("median latency per call (ms)")
    caption = (
        "Median latency per call of each cell several machines ran, one bar per machine; whiskers "
        "are the 95% CI of the median. Lower is faster."
    )
    return Plot(anchor, title, caption, figure_svg(figure, anchor))
