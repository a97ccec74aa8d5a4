"""The report's Serving section: latency percentiles and throughput against the offered rate (the
SLO drawn in), the batch-size mix, the serve rows, and a capacity table per workload served."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from sdbench import units
from sdbench.analysis.analysis import CapacityPlan
from sdbench.report import plots
from sdbench.report.plots import Plot, figure_svg
from sdbench.report.tables import frame_table

SERIES_KEYS = ["device_name", "model", "width", "height", "precision", "batch_size", "max_wait_ms"]
CAPACITY_GPUS = 8
SERVE_COLUMNS = [
    ("device", "device_name", None), ("model", "model", None), ("width", "width", units.COUNT),
    ("height", "height", units.COUNT), ("precision", "precision", None), ("arrivals", "arrivals", None),
    ("max batch", "batch_size", units.COUNT), ("max wait", "max_wait_ms", units.Unit("ms")),
    ("offered", "offered_rps", units.Unit("req/s")), ("served", "throughput_rps", units.Unit("req/s")),
    ("p50", "p50_ms", units.Unit("s", 1000.0)), ("p90", "p90_ms", units.Unit("s", 1000.0)),
    ("p99", "p99_ms", units.Unit("s", 1000.0)), ("SLO p99", "slo_p99_s", units.Unit("s")),
    ("SLO held", "slo_ok", None), ("queue", "queue_ms", units.Unit("ms")),
    ("mean batch", "mean_batch", units.PLAIN), ("utilisation", "utilisation", units.Unit("%", 0.01)),
    ("queue unbounded", "queue_unbounded", None), ("J/image", "energy_per_image_j", units.Unit("J")),
]  # fmt: skip
CAPACITY_COLUMNS = [
    ("GPU", "gpu", None), ("GPUs needed", "gpus_needed", units.COUNT),
    ("max per GPU", "max_rate_per_gpu", units.Unit("req/s")), ("p50", "p50_s", units.Unit("s")),
    ("p99", "p99_s", units.Unit("s")), ("fleet", "usd_per_h", units.Unit("USD/h")),
    ("per 1000 images", "usd_per_1000_images", units.Unit("USD")),
    ("energy per 1000", "energy_per_1000_images_j", units.Unit("kWh", 3.6e6)),
    ("source", "source", None),
]  # fmt: skip


def serving_section(latest: pd.DataFrame, plans: Sequence[CapacityPlan] = ()):
    """None when the results hold no serve rows; `plans` are analysis' capacity plans."""
    from sdbench.report.sections import Section

    rows = latest[latest["stage"] == "serve"] if "stage" in latest else latest.iloc[0:0]
    if rows.empty or "offered_rps" not in rows:
        return None
    rows = rows.assign(arrivals=rows.apply(_arrivals, axis=1))
    ok = rows[(rows["status"] == "ok") & rows["offered_rps"].notna()]
    section = Section(
        "serving", "Serving",
        "Whole-image requests served under load: Poisson arrivals at each offered rate (or a "
        "closed loop of clients), batched dynamically. p50/p90/p99 are every request's latency, "
        "queueing included; a run whose queue grew without bound stopped at its time limit.",
    )  # fmt: skip
    figures = [latency_vs_rate(ok), throughput_vs_rate(ok), batch_mix(ok)]
    section.plots = [p for p in figures if p.svg]
    section.notes = [f"{p.title}: not drawn. {p.skipped}" for p in figures if p.skipped]
    order = [*SERIES_KEYS, "offered_rps"]
    section.tables.append(
        frame_table(rows.sort_values(order), "Serve runs", SERVE_COLUMNS, anchor="serve-runs")
    )
    _capacity_tables(section, plans)
    return section


def _arrivals(row: pd.Series) -> str:
    concurrency = row.get("concurrency")
    if concurrency is not None and concurrency == concurrency:
        return f"closed loop, {int(concurrency)} clients"
    rate = row.get("rate_rps")
    return "Poisson" if rate is not None and rate == rate else "Poisson, auto rate"


def _series(ok: pd.DataFrame):
    keyed = ok[ok["concurrency"].isna()] if "concurrency" in ok else ok
    several = keyed["device_name"].nunique() > 1
    for index, (key, series) in enumerate(keyed.groupby(SERIES_KEYS, sort=True, dropna=False)):
        device, model, width, height, precision, batch, _ = key
        label = f"{model} {width}×{height} {precision}, batch ≤ {batch}"
        yield index, (f"{device}: " if several else "") + label, series.sort_values("offered_rps")


def _finish(figure, axis, ylabel: str, plot: Plot) -> Plot:
    """Every serving plot: offered rate along x, one legend under it, drawn into the plot."""
    axis.set_xlabel("offered rate (requests per second)")
    axis.set_ylabel(ylabel)
    plots._shared_legend(figure, [axis])
    return replace(plot, svg=figure_svg(figure, plot.anchor))


def _rate_plot(anchor: str, title: str):
    """A serving plot of the ok serve rows on one axis, or a skipped one when none finished ok.

    The drawing function draws onto the axis and returns its y label and caption.
    """

    def wrap(draw):
        @plots._styled
        @functools.wraps(draw)
        def plot(ok: pd.DataFrame) -> Plot:
            if ok.empty:
                return Plot(anchor, title, "", skipped="No serve row finished ok.")
            figure, (axis,) = plots._grid(1)
            ylabel, caption = draw(ok, axis)
            return _finish(figure, axis, ylabel, Plot(anchor, title, caption))

        return plot

    return wrap


@_rate_plot("plot-serve-latency", "Latency percentiles vs offered rate")
def latency_vs_rate(ok: pd.DataFrame, axis) -> tuple[str, str]:
    for index, label, series in _series(ok):
        color = plots.SERIES_COLORS[index % len(plots.SERIES_COLORS)]
        for column, style, name in (
            ("p50_ms", ":", "p50"),
            ("p90_ms", "--", "p90"),
            ("p99_ms", "-", "p99"),
        ):
            axis.plot(series["offered_rps"], series[column] / 1000, linestyle=style, marker="o",
                      color=color, label=f"{label} {name}")  # fmt: skip
        unbounded = series[series["queue_unbounded"].fillna(False).astype(bool)]
        axis.scatter(unbounded["offered_rps"], unbounded["p99_ms"] / 1000, marker="x", s=80,
                     color="#c0392b", zorder=5, label="queue unbounded (lower bound)")  # fmt: skip
    for slo in sorted(ok["slo_p99_s"].dropna().unique()):
        axis.axhline(
            slo, color="#c0392b", linewidth=1.2, linestyle="-.", label=f"SLO p99 {slo:g} s"
        )
    caption = "Each request's latency from arrival to its image; the dash-dot line is the p99 SLO."
    return "latency (s)", caption


@_rate_plot("plot-serve-throughput", "Throughput vs offered rate")
def throughput_vs_rate(ok: pd.DataFrame, axis) -> tuple[str, str]:
    for index, label, series in _series(ok):
        axis.plot(series["offered_rps"], series["throughput_rps"], marker="o", label=label,
                  color=plots.SERIES_COLORS[index % len(plots.SERIES_COLORS)])  # fmt: skip
    top = float(ok["offered_rps"].max())
    axis.plot(
        [0, top], [0, top], color="#5b6770", linewidth=0.8, linestyle=":", label="served = offered"
    )
    caption = "Where the line leaves the diagonal, the device cannot keep up and the queue grows."
    return "served (requests per second)", caption


@plots._styled
def batch_mix(ok: pd.DataFrame) -> Plot:
    anchor, title = "plot-serve-batches", "Batch-size mix vs offered rate"
    counted = ok[ok["batch_size_counts"].map(lambda c: c is not None and len(c) > 0)]
    if counted.empty:
        return Plot(anchor, title, "", skipped="No serve row recorded its batches.")
    counted = counted.sort_values(["device_name", "offered_rps"]).head(24)
    labels = [f"{r:.3g}" for r in counted["offered_rps"]]
    widest = max(len(c) for c in counted["batch_size_counts"])
    shares = np.zeros((len(counted), widest))
    for row, counts in enumerate(counted["batch_size_counts"]):
        requests = np.arange(1, len(counts) + 1) * np.asarray(counts, dtype=float)
        shares[row, : len(counts)] = requests / max(requests.sum(), 1.0)
    figure, (axis,) = plots._grid(1)
    bottom = np.zeros(len(counted))
    for size in range(widest):
        axis.bar(labels, shares[:, size], bottom=bottom, label=f"batch of {size + 1}",
                 color=plots.SERIES_COLORS[size % len(plots.SERIES_COLORS)])  # fmt: skip
        bottom += shares[:, size]
    caption = "Which batch sizes the requests were served in: batching grows with the load."
    return _finish(figure, axis, "share of requests", Plot(anchor, title, caption))


def _capacity_tables(section, plans: Sequence[CapacityPlan]) -> None:
    """For each workload served: the GPUs to rent for the load it was served at, same SLO."""
    for plan in plans:
        w = plan.workload
        name = (
            f"{w['model']} {w['width']}×{w['height']} {w['precision']}: "
            f"{plan.rate_rps:.3g} requests/s within p99 {w['slo_p99_s']:g} s"
        )
        if plan.table is None:
            section.notes.append(f"Capacity for {name}: not planned. {plan.error}")
            continue
        shown = plan.table[plan.table["gpus_needed"].notna()].head(CAPACITY_GPUS)
        section.tables.append(
            frame_table(
                shown,
                f"Capacity: {name}",
                CAPACITY_COLUMNS,
                "Cloud GPUs that serve this load within the same SLO, cheapest per image "
                "first (`sdbench capacity` lists every GPU and purchase costs).",
                anchor=f"capacity-{len(section.tables)}",
            )  # fmt: skip
        )
