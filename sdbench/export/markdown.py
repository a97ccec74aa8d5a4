"""Markdown tables: the one writer behind `--format markdown`, `compare`'s pull-request comment
and the report's markdown summary."""

from __future__ import annotations

import re
from collections.abc import Sequence

from sdbench.export.escape import markdown as escape
from sdbench.units import MISSING

_NUMBER = r"[-+~≈×$<>]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?"
# A figure as the commands print one: a number or a range/ratio of two ("1.2-1.6", "23.6/24",
# "-28/+6.3%"), then an optional unit without digits ("ms", "GiB", "x", "s/img"), an optional
# "(CI)" and footnote "[1]"; bold in a pull-request comment. "512x512" and "fp16" are no figure.
_FIGURE = re.compile(
    rf"(\*\*)?{_NUMBER}(?:[/-]{_NUMBER})?(?: ?[^\s\d()\[\]*]+)?(?: \(.+\))?(?: \[\d+\])?(\*\*)?"
)


def markdown_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool] | None = None
) -> str:
    """A markdown table of texts, each escaped (pipes, line breaks, control characters, HTML);
    columns marked `numeric` are right-aligned (`---:`), the rest keep the default alignment.
    Without `numeric`, a column is numeric when its every text is a figure or "-" (`figure_columns`)."""
    if numeric is None:
        numeric = figure_columns(rows, len(headers))
    rule = [("---:" if numeric[i] else "---") for i in range(len(headers))]
    lines = [_line(escape(h) for h in headers), "|" + "|".join(rule) + "|"]
    lines += [_line(escape(text) for text in row) for row in rows]
    return "\n".join(lines)


def figure_columns(rows: Sequence[Sequence[str]], width: int) -> list[bool]:
    """Per column: every text is a figure ("12.3 ms", "1.82x (1.70-1.95)", "$900", "+25.0%") or
    "-", and at least one is a figure, so that a number column reads right-aligned."""
    columns = [[str(row[i]) for row in rows if row[i] != MISSING] for i in range(width)]
    return [bool(texts) and all(_FIGURE.fullmatch(text) for text in texts) for texts in columns]


def _line(cells) -> str:
    return "| " + " | ".join(cells) + " |"
