"""The report's figures as inline SVG (matplotlib, Agg): each function picks a slice and draws it.

Plots draw values the results or the analysis already hold; they never compute statistics. A plot
whose data is absent comes back with `skipped` set to the reason instead of an SVG.

Series and panels are per *machine*, never per device alone: two hosts with the same GPU (or the
same `cuda:0`) are two lines, labelled with their machine label (`h100-80gb-hbm3·node3`); when
every device name belongs to one machine the device name is label enough (`_with_where`).
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from sdbench.analysis.best import default_precision, is_plain_default
from sdbench.machine import machine_names
from sdbench.report.tables import peak_memory_bytes
from sdbench.units import GIB, flops_unit, format_number

if TYPE_CHECKING:  # matplotlib is imported where a figure is drawn: a markdown report needs none
    from matplotlib.figure import Figure

VRAM_SIZES_GB = (8, 12, 16, 24, 48, 80)
MAX_FACETS = 6
MAX_POINT_LABELS = 12  # labels beside scatter points: more overlap and cost a text layout each
MAX_PLOT_MACHINES = 8  # lines of more machines hide each other; the Machines section lists all
PRECISION_COLORS = {
    "fp32": "#1f5fa8",
    "tf32": "#3fa7d6",
    "fp16": "#e07b24",
    "bf16": "#2e9c5a",
    "fp8": "#c0392b",
}
OTHER_COLORS = ("#7b4fa0", "#8c6d31", "#d4477f", "#5b6770", "#b5a300")
SERIES_COLORS = (
    "#1f5fa8",
    "#e07b24",
    "#2e9c5a",
    "#7b4fa0",
    "#c0392b",
    "#8c6d31",
    "#3fa7d6",
    "#d4477f",
)
MARKERS = ("o", "s", "^", "D", "v", "P")
STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#e3e6ea",
    "grid.linewidth": 0.8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "svg.fonttype": "none",  # real <text>: selectable, small, and escaped by matplotlib's XML writer
    "svg.hashsalt": "sdbench",  # stable ids, so the same results give the same page
    "text.parse_math": False,  # a "$" in a device name is text, not mathtext
    "axes.titley": 1.0,  # a fixed title place: placing it automatically measured every tick label
}
# A fixed layout in inches, sized for STYLE's fonts, instead of a layout engine: constrained
# layout measured every text of every panel several times per save, most of a report's drawing
# time. The saved SVG is cropped to what was drawn (measured once), so a longer label than
# these allow for widens the picture rather than being cut off.
MARGIN_LEFT_IN = 0.8  # y tick labels and the y label
MARGIN_RIGHT_IN = 0.3
MARGIN_TOP_IN = 0.35  # a panel title
MARGIN_BOTTOM_IN = 0.6  # x tick labels and the x label
COLUMN_GAP_IN = 0.9  # the right panel's y tick labels and y label
ROW_GAP_IN = 0.95  # x tick labels and x label, then the next row's title
XLABEL_DEPTH_IN = 0.5  # how far below its panel an x label reaches: a shared legend starts there
Y_TICK_STEPS = 5  # at most, on a linear y axis
NICE_STEPS = (1, 2, 2.5, 5, 10)  # tick spacings matplotlib's default locator picks from
TITLE_CHARACTER_EM = 0.6  # a bold title character's average width, generously
PAD_IN = 0.1  # around what was drawn, as savefig's bbox_inches="tight" pads
HISTORY_XLABEL_DEPTH_IN = 0.95  # under slanted dates
HISTORY_LABELS_PER_ROW_CHARS = 50  # longer cell labels take a legend row each


@dataclass(frozen=True)
class Plot:
    anchor: str
    title: str
    caption: str
    svg: str = ""
    skipped: str = ""


def figure_svg(figure: Figure, anchor: str) -> str:
    """The figure as an <svg> element for inlining: no XML prolog, ids prefixed to stay unique."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches=_drawn_box(figure), metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    prefix = re.sub(r"[^A-Za-z0-9_-]", "-", anchor) + "-"
    text = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}\1"', text)
    text = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}\1)", text)
    text = re.sub(r'xlink:href="#([^"]+)"', rf'xlink:href="#{prefix}\1"', text)
    # Scale with the page, never beyond the drawn size.
    size = re.search(r'<svg[^>]*?\swidth="([\d.]+)pt"\s+height="([\d.]+)pt"', text)
    if size:
        text = text.replace(
            size.group(0),
            size.group(0).replace(f'width="{size.group(1)}pt" height="{size.group(2)}pt"', ""),
        )
        text = text.replace("<svg", f'<svg role="img" style="max-width:{size.group(1)}pt"', 1)
    return text


def _ok(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    ok = frame[frame["status"] == "ok"]
    for column in columns:
        ok = (
            ok[pd.to_numeric(ok[column], errors="coerce").notna()] if column in ok else ok.iloc[0:0]
        )
    return ok


def _facets(frame: pd.DataFrame, keys: tuple[str, ...]) -> list[tuple[tuple, pd.DataFrame]]:
    groups = [
        (key if isinstance(key, tuple) else (key,), group)
        for key, group in frame.groupby(list(keys), sort=True)
    ]
    return groups[:MAX_FACETS]


def _drawn_box(figure: Figure):
    """What the figure draws, in inches and padded: measured once, without drawing it first.

    savefig's bbox_inches="tight" draws the whole figure once more before it measures.
    """
    from matplotlib.backends.backend_svg import RendererSVG

    width, height = figure.get_size_inches() * figure.dpi
    renderer = RendererSVG(width, height, io.StringIO())
    return figure.get_tightbbox(renderer).padded(PAD_IN)


def _grid(
    count: int,
    width_in: float | None = None,
    row_height_in: float = 3.3,
    row_gap_in: float = ROW_GAP_IN,
) -> tuple[Figure, list]:
    """`count` panels, one or two columns, placed by the fixed margins above (no layout engine)."""
    from matplotlib.figure import Figure

    columns = 1 if count == 1 else 2
    rows = (count + columns - 1) // columns
    width_in = width_in or (8.0 if columns == 1 else 11.5)
    height_in = row_height_in * rows
    panel_width_in = (
        width_in - MARGIN_LEFT_IN - MARGIN_RIGHT_IN - COLUMN_GAP_IN * (columns - 1)
    ) / columns
    panel_height_in = (
        height_in - MARGIN_TOP_IN - MARGIN_BOTTOM_IN - row_gap_in * (rows - 1)
    ) / rows
    place = {
        "left": MARGIN_LEFT_IN / width_in,
        "right": 1 - MARGIN_RIGHT_IN / width_in,
        "bottom": MARGIN_BOTTOM_IN / height_in,
        "top": 1 - MARGIN_TOP_IN / height_in,
        "wspace": COLUMN_GAP_IN / panel_width_in,
        "hspace": row_gap_in / panel_height_in,
    }
    with _style():
        # 72 dots per inch: what the SVG backend draws at, so the measured box is the drawn one.
        figure = Figure(figsize=(width_in, height_in), dpi=72)
        axes = figure.subplots(rows, columns, squeeze=False, gridspec_kw=place)
    from matplotlib.ticker import MaxNLocator

    flat = list(axes.flat)
    for axis in flat[:count]:
        # Five steps up a linear y axis read as well as nine, at half the labels and grid lines
        # (a log scale brings its own locator).
        axis.yaxis.set_major_locator(MaxNLocator(nbins=Y_TICK_STEPS, steps=NICE_STEPS))
    for extra in flat[count:]:
        extra.set_visible(False)
    return figure, flat[:count]


def _set_title(axis, text: str, fontsize: float | None = None) -> None:
    """A panel title, broken onto more lines where it would reach the next column's title.

    The fixed layout does not widen the gap between columns for a long title (a machine label,
    a model, a stage and a size), so the title gives way instead.
    """
    if axis.get_subplotspec().get_gridspec().ncols > 1:
        size = fontsize or STYLE["axes.titlesize"]
        room_in = axis.get_position().width * axis.get_figure().get_size_inches()[0]
        text = _wrapped(text, int((room_in + COLUMN_GAP_IN) * 72 / (TITLE_CHARACTER_EM * size)))
    axis.set_title(text, **({"fontsize": fontsize} if fontsize else {}))


def _wrapped(text: str, characters: int) -> str:
    """`text` on lines of at most `characters`, broken at its " · " separators (else spaces)."""
    separator = " · " if " · " in text else " "
    lines: list[str] = []
    for part in text.split(separator):
        if lines and len(lines[-1]) + len(separator) + len(part) <= characters:
            lines[-1] += separator + part
        else:
            lines.append(part)
    return (separator.rstrip() + "\n").join(lines)


def _with_where(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with a `where` column naming what ran each row, for series, panels and labels.

    The device name, unless a device name stands for several machines (two hosts with the same
    GPU): then every row's unique machine label, so those machines' cells are never merged.
    """
    device_names = frame["device_name"].fillna(frame["device"]).astype(str)
    if "machine_id" in frame and len(frame):
        machines_per_name = frame.groupby(device_names)["machine_id"].nunique()
        if machines_per_name.max() > 1:
            return frame.assign(where=frame["machine_id"].map(machine_names(frame)).astype(str))
    return frame.assign(where=device_names)


def _few_machines(ok: pd.DataFrame, limit: int = MAX_PLOT_MACHINES) -> tuple[pd.DataFrame, str]:
    """At most `limit` machines' rows (those with the most ok cells), and a caption note."""
    counts = ok["where"].value_counts()
    if len(counts) <= limit:
        return ok, ""
    kept = sorted(counts.index, key=lambda where: (-counts[where], where))[:limit]
    note = (
        f" {limit} of {len(counts)} machines drawn (those with the most ok cells); "
        "the Machines section compares them all."
    )
    return ok[ok["where"].isin(kept)], note


def _series_label(where: object, precision: object, several_machines: bool) -> str:
    return f"{where} · {precision}" if several_machines else str(precision)


def _precision_order(precision: object) -> tuple[int, str]:
    order = list(PRECISION_COLORS)
    return (order.index(precision) if precision in order else len(order), str(precision))


def _color(precision: object, index: int) -> str:
    return PRECISION_COLORS.get(str(precision), OTHER_COLORS[index % len(OTHER_COLORS)])


def _series(frame: pd.DataFrame, by: list[str]) -> Iterator[tuple[int, tuple, pd.DataFrame]]:
    for index, (key, group) in enumerate(frame.groupby(by, sort=True)):
        yield index, (key if isinstance(key, tuple) else (key,)), group


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows with default attention/compile knobs; all rows when none are plain."""
    plain = frame[is_plain_default(_knob_columns(frame))]
    return plain if not plain.empty else frame


def _knob_columns(frame: pd.DataFrame) -> pd.DataFrame:
    missing = {name: None for name in ("channels_last", "vae") if name not in frame}
    return frame.assign(**missing) if missing else frame


def _style():
    import matplotlib

    return matplotlib.rc_context(STYLE)


def _styled(function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with _style():
            return function(*args, **kwargs)

    return wrapper


def _resolution_ticks(axis, group: pd.DataFrame) -> None:
    pairs = group[["width", "height"]].drop_duplicates().sort_values(["width", "height"])
    axis.set_xticks([w * h for w, h in pairs.itertuples(index=False)])
    axis.set_xticklabels([f"{w}×{h}" for w, h in pairs.itertuples(index=False)])


def _log_if_wide(axis, values: pd.Series) -> None:
    values = pd.to_numeric(values, errors="coerce").dropna()
    if len(values) and values.min() > 0 and values.max() / values.min() > 20:
        _log_scale(axis, "y")


def _log_scale(axis, which: str) -> None:
    """A log axis labelled with plain numbers (1, 2, 5, 10, ...) rather than powers of ten."""
    from matplotlib import ticker

    (axis.set_yscale if which == "y" else axis.set_xscale)("log")
    scale_axis = axis.yaxis if which == "y" else axis.xaxis
    plain = ticker.FuncFormatter(lambda value, _: format_number(value))
    scale_axis.set_major_formatter(plain)
    scale_axis.set_minor_locator(ticker.LogLocator(subs=(2.0, 5.0)))
    scale_axis.set_minor_formatter(plain)


def _shared_legend(
    figure: Figure,
    axes: list,
    title: str | None = None,
    depth_in: float = XLABEL_DEPTH_IN,
    **options,
) -> None:
    """One legend under the plots with every series of every panel, so no line is hidden.

    It starts `depth_in` under the lowest panels (below their x labels); `options` go to
    `Figure.legend` (ncols, fontsize).
    """
    seen: dict[str, object] = {}
    for axis in axes:
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    if seen:
        # Its top just under the lowest panels' x labels; the saved picture grows to hold it.
        height_in = figure.get_size_inches()[1]
        lowest_in = min(axis.get_position().y0 for axis in axes) * height_in
        figure.legend(
            list(seen.values()),
            list(seen),
            loc="upper center",
            bbox_to_anchor=(0.5, (lowest_in - depth_in) / height_in),
            title=title,
            **{"ncols": min(len(seen), 4), **options},
        )


@_styled
def latency_vs_resolution(frame: pd.DataFrame) -> Plot:
    anchor, title = "plot-latency-resolution", "Latency vs resolution, per precision"
    ok = _plain(_ok(_with_where(frame), "median_ms"))
    ok = ok[ok["batch_size"] == ok.groupby(["model", "stage"])["batch_size"].transform("min")]
    if ok[["width", "height"]].drop_duplicates().shape[0] < 2:
        return Plot(anchor, title, "", skipped="These results hold fewer than two resolutions.")
    ok, drawn = _few_machines(ok)
    several = ok["where"].nunique() > 1
    facets = _facets(ok, ("model", "stage"))
    figure, axes = _grid(len(facets))
    for axis, ((model, stage), group) in zip(axes, facets, strict=True):
        for index, (where, precision), series in _series(group, ["where", "precision"]):
            series = series.sort_values(["width", "height"])
            axis.plot(
                series["width"] * series["height"], series["median_ms"], marker=MARKERS[index % len(MARKERS)],
                color=_color(precision, index), label=_series_label(where, precision, several),
            )  # fmt: skip
        _resolution_ticks(axis, group)
        _log_if_wide(axis, group["median_ms"])
        _set_title(axis, f"{model} · {stage} · batch {int(group['batch_size'].min())}")
        axis.set_xlabel("resolution (pixels per image)")
        axis.set_ylabel("median latency per call (ms)")
    _shared_legend(figure, axes)
    caption = "Default attention and compile settings, smallest batch size in the results. Lower is better."
    return Plot(anchor, title, caption + drawn, figure_svg(figure, anchor))


@_styled
def throughput_vs_batch(frame: pd.DataFrame) -> Plot:
    anchor, title = "plot-throughput-batch", "Throughput vs batch size"
    ok = _plain(_ok(_with_where(frame), "images_per_s"))
    if ok["batch_size"].nunique() < 2:
        return Plot(anchor, title, "", skipped="These results hold a single batch size.")
    ok, drawn = _few_machines(ok)
    several = ok["where"].nunique() > 1
    facets = _facets(ok, ("model", "stage", "width", "height"))
    figure, axes = _grid(len(facets))
    for axis, ((model, stage, width, height), group) in zip(axes, facets, strict=True):
        for index, (where, precision), series in _series(group, ["where", "precision"]):
            series = series.sort_values("batch_size")
            axis.plot(
                series["batch_size"], series["images_per_s"], marker=MARKERS[index % len(MARKERS)],
                color=_color(precision, index), label=_series_label(where, precision, several),
            )  # fmt: skip
        axis.set_xticks(sorted(group["batch_size"].unique()))
        _log_if_wide(axis, group["images_per_s"])
        _set_title(axis, f"{model} · {stage} · {width}×{height}")
        axis.set_xlabel("batch size (images per call)")
        axis.set_ylabel("images per second")
    _shared_legend(figure, axes)
    caption = (
        "Images per second as the batch grows; a flat line means the device is already saturated."
    )
    return Plot(anchor, title, caption + drawn, figure_svg(figure, anchor))


@_styled
def memory_vs_resolution(frame: pd.DataFrame) -> Plot:
    anchor, title = "plot-memory", "Peak memory vs resolution and batch size"
    frame = _with_where(frame.assign(peak_memory_bytes=peak_memory_bytes(frame)))
    ok = _plain(_ok(frame, "peak_memory_bytes"))
    if ok.empty:
        return Plot(anchor, title, "", skipped="No peak memory was recorded in these results.")
    precisions = set(ok["precision"])
    default = ok["device"].map(lambda device: default_precision(device, precisions))
    ok = ok[ok["precision"] == default] if (ok["precision"] == default).any() else ok
    ok, drawn = _few_machines(ok)
    several = ok["where"].nunique() > 1
    facets = _facets(ok, ("model", "stage"))
    figure, axes = _grid(len(facets))
    for axis, ((model, stage), group) in zip(axes, facets, strict=True):
        for index, (where, precision, batch), series in _series(
            group, ["where", "precision", "batch_size"]
        ):
            series = series.sort_values(["width", "height"])
            label = f"{_series_label(where, precision, several)} · batch {batch}"
            axis.plot(
                series["width"] * series["height"], series["peak_memory_bytes"] / GIB,
                marker=MARKERS[index % len(MARKERS)], color=SERIES_COLORS[index % len(SERIES_COLORS)], label=label,
            )  # fmt: skip
        _vram_lines(axis, group["peak_memory_bytes"].max() / GIB)
        _resolution_ticks(axis, group)
        _log_scale(axis, "y")
        _set_title(axis, f"{model} · {stage}")
        axis.set_xlabel("resolution (pixels per image)")
        axis.set_ylabel("peak memory (GiB)")
    _shared_legend(figure, axes)
    caption = (
        "Allocator-reserved device memory (process RSS on CPU) at each device's default precision. "
        "Dashed lines: common GPU memory sizes; a point above a line does not fit that card."
    )
    return Plot(anchor, title, caption + drawn, figure_svg(figure, anchor))


def _vram_lines(axis, largest_gib: float) -> None:
    for size_gb in VRAM_SIZES_GB:
        axis.axhline(size_gb, color="#9aa3ad", linestyle="--", linewidth=0.8, zorder=0)
        axis.annotate(f"{size_gb} GB", (1.0, size_gb), xycoords=("axes fraction", "data"), fontsize=7,
                      color="#6b7580", ha="right", va="bottom")  # fmt: skip
        if size_gb >= largest_gib:
            break  # the first card size above the data is enough context


@_styled
def attention_precision_bars(frame: pd.DataFrame, metric: str = "median_ms") -> Plot:
    """Grouped bars: attention kernels side by side, one bar per precision, at each workload's most tried size."""
    energy = metric == "energy_per_image_j"
    anchor = "plot-energy" if energy else "plot-attention-precision"
    title = "Energy per image" if energy else "Attention kernels and precisions side by side"
    frame = _with_where(frame)
    compiled = frame["compile"].fillna("none") == "none"
    rows = frame[compiled]
    ok = _ok(rows, metric)
    if ok.empty or (not energy and ok[["attention", "precision"]].drop_duplicates().shape[0] < 2):
        reason = "No energy was measured in these results (CPU runs have no energy counter)." if energy else (
            "These results hold a single attention kernel and precision.")  # fmt: skip
        return Plot(anchor, title, "", skipped=reason)
    keys = ["where", "model", "stage", "width", "height", "batch_size"]
    workloads = ok.groupby(keys).size()
    every = workloads.groupby(level=[0, 1, 2]).idxmax().tolist()
    chosen = every[:MAX_FACETS]
    figure, axes = _grid(len(chosen))
    for axis, key in zip(axes, chosen, strict=True):
        _bars(axis, rows.set_index(keys).loc[[key]].reset_index(), metric)
        _set_title(axis, f"{key[0]} · {key[1]} · {key[2]} · {key[3]}×{key[4]} · batch {key[5]}")
        axis.set_ylabel("energy per image (J)" if energy else "median latency per call (ms)")
    _shared_legend(figure, axes, title="precision")
    caption = (
        "Energy per image from the device's energy counter; lower is better."
        if energy
        else "Median latency per call, no compilation; lower is better. Cells that did not run ok show their status."
    )
    if len(every) > len(chosen):
        caption += (
            f" {len(chosen)} of {len(every)} panels drawn (one per machine, model and stage)."
        )
    return Plot(anchor, title, caption, figure_svg(figure, anchor))


def _bars(axis, rows: pd.DataFrame, metric: str) -> None:
    attentions = sorted(rows["attention"].dropna().unique())
    precisions = sorted(rows["precision"].dropna().unique(), key=_precision_order)
    width = 0.8 / max(len(precisions), 1)
    top = pd.to_numeric(rows[metric], errors="coerce").max()
    labelled: set[str] = set()
    for index, precision in enumerate(precisions):
        for position, attention in enumerate(attentions):
            cell = rows[(rows["precision"] == precision) & (rows["attention"] == attention)]
            x = position - 0.4 + width * (index + 0.5)
            value = pd.to_numeric(cell[metric], errors="coerce").dropna()
            if cell.empty:
                continue
            if cell["status"].iloc[0] == "ok" and len(value):
                label = None if precision in labelled else precision
                labelled.add(precision)
                axis.bar(
                    x, value.iloc[0], width * 0.92, color=_color(precision, index), label=label
                )
            else:
                axis.text(x, top * 0.02, str(cell["status"].iloc[0]), rotation=90, ha="center", va="bottom",
                          fontsize=7, color="#c0392b")  # fmt: skip
    axis.set_xticks(range(len(attentions)))
    axis.set_xticklabels(attentions)
    axis.grid(axis="x", visible=False)


@_styled
def roofline(frame: pd.DataFrame) -> Plot:
    """Achieved TFLOP/s per cell under each device's probed compute peak."""
    anchor = "plot-roofline"
    ok = _ok(_with_where(frame), "tflops_per_s")
    if ok.empty:
        return Plot(
            anchor, "Roofline", "", skipped="No achieved TFLOP/s in these results (no FLOP counts)."
        )
    return _compute_roof(ok, anchor)


def _device_roofs(ok: pd.DataFrame) -> pd.DataFrame:
    columns = [c for c in ("peak_tflops",) if c in ok]
    return (
        ok.groupby("where")[columns].max() if columns else pd.DataFrame(index=ok["where"].unique())
    )


def _compute_roof(ok: pd.DataFrame, anchor: str) -> Plot:
    title = "Achieved compute under the probed peak"
    ok, drawn = _few_machines(ok, MAX_FACETS)  # a panel per machine
    roofs = _device_roofs(ok)
    work = flops_unit(ok["flops"])
    figure, axes = _grid(min(ok["where"].nunique(), MAX_FACETS))
    for axis, (where, group) in zip(
        axes, list(ok.groupby("where", sort=True))[:MAX_FACETS], strict=True
    ):
        for index, precision, series in _series(group, ["precision"]):
            axis.scatter(series["flops"] / work.scale, series["tflops_per_s"], s=18, color=_color(precision[0], index),
                         label=str(precision[0]))  # fmt: skip
        peak = roofs.loc[where].get("peak_tflops") if "peak_tflops" in roofs else None
        if peak is not None and pd.notna(peak):
            axis.axhline(peak, color="#c0392b", linestyle="--", linewidth=1)
            axis.annotate(f"probed peak {peak:.3g} TFLOP/s", (0.01, peak), xycoords=("axes fraction", "data"),
                          fontsize=7, color="#c0392b", va="bottom")  # fmt: skip
        _log_scale(axis, "x")
        _set_title(axis, str(where))
        axis.set_xlabel(f"work per call ({work.label})")
        axis.set_ylabel("achieved TFLOP/s")
    _shared_legend(figure, axes, title="precision")
    caption = (
        "Achieved TFLOP/s per cell against each device's probed dense peak (column peak_tflops); "
        "the work per call is the cell's FLOP count."
    )
    return Plot(anchor, title, caption + drawn, figure_svg(figure, anchor))


@_styled
def compile_time_vs_gain(gains: pd.DataFrame) -> Plot:
    """Scatter of compile time against speed-up over eager, from `best.compile_gains`."""
    anchor, title = "plot-compile", "Compile time vs gain"
    gains = gains[gains["compile_s"].notna() & gains["speedup"].notna()]
    if gains.empty:
        return Plot(
            anchor,
            title,
            "",
            skipped="No compiled cell has an uncompiled twin with a compile time.",
        )
    figure, (axis,) = _grid(1, row_height_in=3.4)
    labelled = gains["speedup"].nlargest(MAX_POINT_LABELS, keep="first").index
    for index, mode, series in _series(gains, ["compile"]):
        axis.scatter(series["compile_s"], series["speedup"], s=24, color=SERIES_COLORS[index % len(SERIES_COLORS)],
                     marker=MARKERS[index % len(MARKERS)], label=str(mode[0]))  # fmt: skip
        for _, row in series[series.index.isin(labelled)].iterrows():
            label = f"{row['model']} {row['stage']} {row['width']}×{row['height']} b{row['batch_size']} {row['precision']}"
            axis.annotate(label, (row["compile_s"], row["speedup"]), fontsize=7, color="#4a525a",
                          xytext=(4, 3), textcoords="offset points")  # fmt: skip
    axis.axhline(1.0, color="#9aa3ad", linestyle="--", linewidth=0.8)
    axis.set_xlabel("compile time (s)")
    axis.set_ylabel("speed-up over uncompiled (×)")
    axis.legend(title="torch.compile mode")
    caption = "Each point is one compiled cell against the same configuration uncompiled; above 1× is faster."
    if len(gains) > len(labelled):
        caption += f" The {len(labelled)} largest speed-ups of {len(gains)} points are labelled."
    return Plot(anchor, title, caption, figure_svg(figure, anchor))


@_styled
def history_series(
    frame: pd.DataFrame, cell_labels: dict[str, str], changes: pd.DataFrame | None
) -> Plot:
    """Median latency of each repeated series per run, change points marked where analysis found them.

    `cell_labels` is keyed by `series_id` when the frame has that column (cell on one machine),
    else by `cell_id`.
    """
    anchor, title = "plot-history", "History of repeated cells"
    figure, (axis,) = _grid(1, row_height_in=3.8)
    key = "series_id" if "series_id" in frame else "cell_id"
    for index, cell_id in enumerate(cell_labels):
        series = frame[frame[key] == cell_id].sort_values("started_at")
        color = SERIES_COLORS[index % len(SERIES_COLORS)]
        axis.plot(
            series["started_at"],
            series["median_ms"],
            marker="o",
            color=color,
            label=cell_labels[cell_id],
        )
        if changes is not None and not changes.empty and key in changes:
            _mark_changes(axis, series, changes[changes[key] == cell_id], color)
    _log_if_wide(axis, frame["median_ms"])
    axis.set_ylabel("median latency per call (ms)")
    axis.set_xlabel("run started at (UTC)")
    figure.autofmt_xdate(bottom=figure.subplotpars.bottom)  # slanted dates, margins kept
    long_labels = max(map(len, cell_labels.values()), default=0) > HISTORY_LABELS_PER_ROW_CHARS
    _shared_legend(figure, [axis], depth_in=HISTORY_XLABEL_DEPTH_IN, ncols=1 if long_labels else 2,
                   fontsize=7)  # fmt: skip
    caption = "One line per cell that appears in several runs; circled points are change points found by the history analysis."
    return Plot(anchor, title, caption, figure_svg(figure, anchor))


def _mark_changes(axis, series: pd.DataFrame, changes: pd.DataFrame, color: str) -> None:
    key = "run_id" if "run_id" in changes else None
    if key is None:
        return
    marked = series[series["run_id"].isin(changes["run_id"])]
    axis.scatter(
        marked["started_at"],
        marked["median_ms"],
        s=110,
        facecolors="none",
        edgecolors=color,
        linewidths=1.6,
    )


@_styled
def lever_tradeoff(table: pd.DataFrame) -> Plot:
    """Time against peak memory, one point per lever setting, from `analysis.levers.lever_table`.

    One panel per (machine or device, model, stage, size, batch, precision); settings whose fidelity failed
    are drawn as red crosses and named so in their label.
    """
    anchor, title = "plot-levers", "Levers: time vs peak memory"
    rows = table[table["peak_bytes"].notna() & table["median_ms"].notna()]
    keys = ("where", "model", "stage", "width", "height", "batch_size", "precision")
    rows = _with_where(rows)
    facets = [(k, g) for k, g in _facets(rows, keys) if (g["setting"] != "none").any()]
    if not facets:
        return Plot(anchor, title, "", skipped="No lever setting (memory, quant, cache) ran ok.")
    figure, axes = _grid(len(facets), row_height_in=3.4)
    for axis, (key, group) in zip(axes, facets, strict=True):
        device, model, stage, width, height, batch, precision = key
        for _, row in group.iterrows():
            failed = not row["fidelity_ok"]
            axis.scatter(row["peak_bytes"] / GIB, row["median_ms"], s=30 if failed else 26,
                         marker="x" if failed else "o", color="#c0392b" if failed else "#1f5fa8")  # fmt: skip
            label = str(row["setting"]) + (" (fidelity fails)" if failed else "")
            axis.annotate(label, (row["peak_bytes"] / GIB, row["median_ms"]), fontsize=7,
                          color="#4a525a", xytext=(4, 3), textcoords="offset points")  # fmt: skip
        _log_if_wide(axis, group["median_ms"])
        _set_title(axis, f"{device} · {model} {stage} {width}×{height} b{batch} {precision}")
        axis.set_xlabel(f"peak {group['memory_source'].iloc[0]} memory (GiB)")
        axis.set_ylabel("median per call (ms)")
    caption = (
        "Each point is one setting of the same workload; down is faster, left uses less memory. "
        "Red crosses failed their fidelity tolerance against the fp32 reference. On a CPU the "
        "memory is the process's peak RSS (weights included); on a GPU, peak reserved device memory."
    )
    return Plot(anchor, title, caption, figure_svg(figure, anchor))
