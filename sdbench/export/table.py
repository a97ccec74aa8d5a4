"""Plain-text figures for the terminal: aligned tables that fit the output width (100 columns
unless --wide), notes wrapped to it, footnotes, and one cell's text (units from sdbench.units)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sdbench import units
from sdbench.export.escape import printable
from sdbench.units import bytes_text

human_bytes = bytes_text  # the older name

WIDTH = 100  # terminal output fits this many columns unless --wide
_settings = {"wide": False}


def set_wide(wide: bool) -> None:
    """`--wide`: tables and notes keep their natural width instead of fitting WIDTH columns."""
    _settings["wide"] = wide


def line_width() -> int | None:
    return None if _settings["wide"] else WIDTH


def print_note(text: str) -> None:
    """A paragraph below a table, wrapped to the output width (a hanging indent after the first line)."""
    import textwrap

    width = line_width()
    for paragraph in text.split("\n"):
        if width is None or len(paragraph) <= width:
            print(paragraph)
        else:
            print(textwrap.fill(paragraph, width, subsequent_indent="  ", break_on_hyphens=False))


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], indent: int = 0, fit: bool = True
) -> str:
    """A plain aligned text table; numbers right-aligned; text columns cut (…) to fit the width
    (not with `fit` False: a file such as gpu-check's summary keeps every label whole)."""
    cells = [[format_cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [
        all(_is_number(row[i]) for row in rows if row[i] is not None) for i in range(len(headers))
    ]
    width = line_width() if fit else None
    widths = _fit(widths, numeric, [len(h) for h in headers], width and width - indent)

    def line(values: Sequence[str]) -> str:
        parts = [
            _cut(v, w).rjust(w) if num else _cut(v, w).ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    return "\n".join(out)


def footnotes(rows: list[list[Any]], column: int) -> tuple[list[list[Any]], list[str]]:
    """Long texts of one column as [1], [2], ... with each distinct text once, for below the table."""
    numbered: dict[str, int] = {}
    out = []
    for row in rows:
        text = row[column]
        row = list(row)
        if text:
            number = numbered.setdefault(str(text), len(numbered) + 1)
            row[column] = f"[{number}]"
        out.append(row)
    return out, [f"[{n}] {text}" for text, n in numbered.items()]


def format_grouped(headers: Sequence[str], rows: Sequence[Sequence[Any]], column: int) -> str:
    """A table without `column`, whose value heads each run of rows instead (a device, a tier)."""
    keep = [i for i in range(len(headers)) if i != column]
    lines = format_table([headers[i] for i in keep], [[row[i] for i in keep] for row in rows], 2)
    lines = lines.split("\n")
    out, current = lines[:2], object()
    for row, line in zip(rows, lines[2:], strict=True):
        if row[column] != current:
            current = row[column]
            out.append(f"{format_cell(current)}:")
        out.append("  " + line)
    out[:2] = ["  " + line for line in out[:2]]
    return "\n".join(out)


def _fit(widths: list[int], numeric: list[bool], floors: list[int], limit: int | None) -> list[int]:
    """Narrow the widest text columns (never below their header or 8) until the table fits."""
    widths = list(widths)
    while limit is not None and sum(widths) + 2 * (len(widths) - 1) > limit:
        text = [i for i, w in enumerate(widths) if not numeric[i] and w > max(floors[i], 8)]
        if not text:
            break
        widest = max(text, key=lambda i: widths[i])
        widths[widest] -= 1
    return widths


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def format_cell(value: Any) -> str:
    """A table cell's text: "-" for a null, ✓/✗ for a flag, ~3 significant digits for a float."""
    if isinstance(value, bool):
        return units.check_text(value)
    if value is None or isinstance(value, float | int):
        if isinstance(value, int):
            return f"{value:,}" if abs(value) >= 10_000 else str(value)
        return units.number_text(value)
    return printable(value)  # a test or suite name must not break the table or the terminal


# A run's cells as `run` prints them at its end and `show` prints them later: (header, key).
# Grouped by model (format_grouped) these fit 100 columns with the longest stage, resolution and
# status whole; TFLOP/s and the rest are in the report and `show --format json`.
RUN_CELL_COLUMNS = (
    ("model", "model"), ("stage", "stage"), ("res", "resolution"), ("bs", "batch_size"),
    ("prec", "precision"), ("attn", "attention"), ("status", "status"),
    ("median", "median_ms"), ("it/s", "it_per_s"), ("img/s", "images_per_s"),
    ("peak mem", "peak_mem"),
)  # fmt: skip


def run_cells_table(rows: Sequence[dict]) -> tuple[list[str], list[list[Any]]]:
    """Headers and one row per cell of a run, its figures as text with their units."""
    headers = [label for label, _ in RUN_CELL_COLUMNS]
    return headers, [[_run_cell_value(row, key) for _, key in RUN_CELL_COLUMNS] for row in rows]


def _run_cell_value(row: dict, key: str) -> Any:
    if key == "resolution":
        return f"{row['width']}x{row['height']}"
    if key == "attention":
        compile_mode = row.get("compile") or "none"
        return row["attention"] + ("" if compile_mode == "none" else f"+{compile_mode}")
    if key == "status":
        return row["status"] + (" (fidelity ✗)" if row.get("fidelity_ok") is False else "")
    if key == "median_ms":
        return units.time_text(row.get("median_ms"))
    if key == "peak_mem":
        return bytes_text(row.get("peak_mem_reserved_bytes") or row.get("peak_rss_bytes"))
    return row.get(key)
