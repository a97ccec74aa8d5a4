"""Markdown tables: the one writer behind `--format markdown`, `compare`'s pull-request comment
and the report's markdown summary."""

from __future__ import annotations

from collections.abc import Sequence

from sdbench.export.escape import markdown as escape


def markdown_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool] | None = None
) -> str:
    """A markdown table of texts, each escaped (pipes, line breaks, control characters, HTML);
    columns marked `numeric` are right-aligned (`---:`), the rest keep the default alignment."""
    rule = [("---:" if numeric and numeric[i] else "---") for i in range(len(headers))]
    lines = [_line(escape(h) for h in headers), "|" + "|".join(rule) + "|"]
    lines += [_line(escape(text) for text in row) for row in rows]
    return "\n".join(lines)


def _line(cells) -> str:
    return "| " + " | ".join(cells) + " |"
