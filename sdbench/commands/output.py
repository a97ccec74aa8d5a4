"""Shared output helpers for CLI verbs: JSON that uses Parquet column names, and plain tables."""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Sequence
from typing import Any

from sdbench.report.text import format_cell, format_table, human_bytes

__all__ = ["format_cell", "format_table", "human_bytes", "print_json"]

FORMATS = ("table", "markdown", "json", "csv")


def add_format_option(parser: argparse.ArgumentParser, formats: Sequence[str] = FORMATS) -> None:
    """`--format table|markdown|json|csv` (the first is the default) and `--json` as its shorthand."""
    parser.add_argument(
        "--format",
        choices=formats,
        default=formats[0],
        help=f"output format (default {formats[0]})",
    )
    parser.add_argument(
        "--json",
        dest="format",
        action="store_const",
        const="json",
        help="shorthand for --format json",
    )


def print_rows(
    output_format: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    records: Sequence[dict] | None = None,
) -> None:
    """Rows as an aligned table, a markdown table or CSV; JSON prints `records` (Parquet names)."""
    if output_format == "json":
        print_json(
            list(records)
            if records is not None
            else [dict(zip(headers, r, strict=True)) for r in rows]
        )
    elif output_format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        if records is not None:
            keys = list(records[0]) if records else []
            writer.writerow(keys)
            writer.writerows([_plain(record.get(k)) for k in keys] for record in records)
        else:
            writer.writerow(headers)
            writer.writerows([_plain(v) for v in row] for row in rows)
    elif output_format == "markdown":
        print(format_markdown(headers, rows))
    else:
        print(format_table(headers, rows))


def format_markdown(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table; pipes in values escaped."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += [
        "| " + " | ".join(format_cell(v).replace("|", "\\|") for v in row) + " |" for row in rows
    ]
    return "\n".join(lines)


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, list | dict | str):
        try:
            return _plain(value.item())
        except (ValueError, AttributeError):
            pass
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple) or (hasattr(value, "tolist") and not isinstance(value, str)):
        items = value.tolist() if hasattr(value, "tolist") else value
        return [_plain(v) for v in items]
    return value


def print_json(data: Any) -> None:
    json.dump(_plain(data), sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
