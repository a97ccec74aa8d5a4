"""Turn result and analysis DataFrames into display tables: text, sort keys and units per column.

Nothing here computes a statistic; it picks columns, chooses units and formats what is there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from sdbench import units
from sdbench.units import Unit, as_number


@dataclass(frozen=True)
class Cell:
    """One table cell: what is shown, what it sorts by, and an optional style and tooltip."""

    text: str
    sort: float | str | None = None
    css: str = ""
    title: str = ""
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class Column:
    label: str
    numeric: bool = False


@dataclass
class Table:
    title: str
    columns: list[Column]
    rows: list[list[Cell]]
    caption: str = ""
    anchor: str = ""
    frame: pd.DataFrame | None = field(default=None, repr=False)  # what was shown, for markdown


def text_cell(value: object) -> Cell:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return Cell("–", "")
    text = str(value)
    return Cell(text, text, "long-text" if len(text) > 40 else "")


def number_cell(value: object, unit: Unit) -> Cell:
    number = as_number(value)
    if number is None:
        return Cell("–", None, "missing")
    return Cell(unit.show(number), number)


def status_cell(status: object, error: object) -> Cell:
    reason = "" if error is None or pd.isna(error) else str(error)
    return Cell(
        str(status), str(status), f"status status-{status}", reason, (reason,) if reason else ()
    )


def fidelity_cell(row: Mapping[str, object]) -> Cell:
    nonfinite = row.get("nonfinite")
    fidelity_ok = row.get("fidelity_ok")
    error = as_number(row.get("ref_rel_err"))
    detail = "" if error is None else f"rel err {units.format_number(error)}"
    if nonfinite is True:
        return Cell("non-finite", 2, "fidelity-bad", "the output held NaN or Inf")
    if fidelity_ok is None or pd.isna(fidelity_ok):
        return Cell(detail or "not measured", -1, "fidelity-unknown")
    if bool(fidelity_ok):
        return Cell(f"pass ({detail})" if detail else "pass", 0, "fidelity-ok")
    return Cell(f"fail ({detail})" if detail else "fail", 1, "fidelity-bad")


def warnings_cell(value: object) -> Cell:
    items = [] if value is None or isinstance(value, float) else [str(w) for w in list(value)]
    return Cell("", len(items), "warnings" if items else "", "", tuple(items))


@dataclass(frozen=True)
class Measure:
    """A numeric result column of the matrix: where it lives and how its unit is chosen."""

    label: str
    column: str
    choose_unit: Callable[[pd.Series], Unit]


MEASURES = (
    Measure("latency", "median_ms", units.time_unit),
    Measure("it/s", "it_per_s", lambda _: units.PLAIN),
    Measure("images/s", "images_per_s", lambda _: units.PLAIN),
    Measure("compute", "tflops_per_s", units.flop_rate_unit),
    Measure("MFU", "mfu", lambda _: units.PERCENT),
    Measure("peak memory", "peak_memory_bytes", units.bytes_unit),
    Measure("energy/image", "energy_per_image_j", units.energy_unit),
    Measure("compile", "compile_s", lambda _: Unit("s")),
)


def peak_memory_bytes(frame: pd.DataFrame) -> pd.Series:
    """The memory a cell needs: allocator-reserved device memory, else process RSS (CPU)."""
    reserved = pd.to_numeric(frame.get("peak_mem_reserved_bytes"), errors="coerce")
    rss = pd.to_numeric(frame.get("peak_rss_bytes"), errors="coerce")
    return reserved.fillna(rss)


CONFIG_COLUMNS = (
    ("machine", "machine"),  # shown only when the results hold several machines
    ("device", "device"),
    ("resolution", None),
    ("batch", "batch_size"),
    ("precision", "precision"),
    ("attention", "attention"),
    ("compile", "compile"),
)


def matrix_table(rows: pd.DataFrame, model: str, stage: str) -> Table:
    """One model and stage: every cell's configuration, status, figures, fidelity and warnings."""
    rows = rows.assign(peak_memory_bytes=peak_memory_bytes(rows))
    config = [
        (label, name)
        for label, name in CONFIG_COLUMNS
        if name is None or (name in rows and rows[name].nunique(dropna=False) > 1)
    ]
    measures = [m for m in MEASURES if m.column in rows and rows[m.column].notna().any()]
    chosen = {m.column: m.choose_unit(rows[m.column]) for m in measures}
    columns = [Column(label) for label, _ in config] + [Column("status")]
    columns += [Column(_with_unit(m.label, chosen[m.column]), numeric=True) for m in measures]
    columns += [Column("fidelity"), Column("warnings")]
    body = []
    names = list(rows.columns)
    # The values iterrows would give (the frame's common dtype), without a Series per row.
    for row in (dict(zip(names, values, strict=True)) for values in rows.to_numpy()):
        cells = [
            _resolution_cell(row) if name is None else text_cell(row[name]) for _, name in config
        ]
        cells.append(status_cell(row["status"], row.get("error")))
        cells += [number_cell(row[m.column], chosen[m.column]) for m in measures]
        cells += [fidelity_cell(row), warnings_cell(row.get("warnings"))]
        body.append(cells)
    devices = (
        ", ".join(sorted(rows["device_name"].dropna().astype(str).unique())) or "unknown device"
    )
    caption = f"{len(rows)} cells on {devices}. Click a column header to sort."
    return Table(f"{model} · {stage}", columns, body, caption, anchor=f"matrix-{model}-{stage}")


def _with_unit(label: str, unit: Unit) -> str:
    return f"{label} ({unit.label})" if unit.label else label


def _resolution_cell(row: Mapping[str, object]) -> Cell:
    height, width = as_number(row.get("height")), as_number(row.get("width"))
    if height is None or width is None:
        return Cell("–", None)
    return Cell(f"{int(width)}×{int(height)}", width * height)


def same_name(*names: str, unit: Unit | None = None) -> list[tuple[str, str, Unit | None]]:
    """`frame_table` columns shown under their own names: same_name("model", "stage")."""
    return [(name, name, unit) for name in names]


def frame_table(
    frame: pd.DataFrame,
    title: str,
    columns: Sequence[tuple[str, str, Unit | None]],
    caption: str = "",
    anchor: str = "",
) -> Table:
    """A table of chosen columns: (label, column name, unit or None for text)."""
    present = [(label, name, unit) for label, name, unit in columns if name in frame]
    header = [
        Column(_with_unit(label, unit) if unit else label, numeric=unit is not None)
        for label, name, unit in present
    ]
    # The values iterrows would give (the whole frame's common dtype), without a Series per row:
    # a fleet's tables run to thousands of rows.
    positions = [(frame.columns.get_loc(name), unit) for _, name, unit in present]
    body = [
        [number_cell(row[at], unit) if unit else text_cell(row[at]) for at, unit in positions]
        for row in frame.to_numpy()
    ]
    return Table(title, header, body, caption, anchor, frame[[name for _, name, _ in present]])


def generic_table(frame: pd.DataFrame, title: str, caption: str = "", anchor: str = "") -> Table:
    """Every column of an analysis result, numbers formatted as they are (units live in the names)."""
    columns = [
        (
            name,
            name,
            units.PLAIN
            if pd.api.types.is_numeric_dtype(frame[name]) and frame[name].dtype != bool
            else None,
        )
        for name in frame.columns
    ]
    return frame_table(frame, title, columns, caption, anchor)
