"""Shared output helpers for CLI verbs: the --format/--json/--wide and --results options, and
rows printed through the exporter of the chosen format (`sdbench.export`: table, markdown, CSV,
JSON with Parquet column names)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from sdbench.export.json import frame_records, print_json
from sdbench.export.markdown import markdown_table
from sdbench.export.table import (
    WIDTH,
    footnotes,
    format_cell,
    format_grouped,
    format_table,
    human_bytes,
    line_width,
    print_note,
    set_wide,
)

__all__ = [
    "WIDTH", "footnotes", "format_cell", "format_grouped", "format_table", "frame_records",
    "human_bytes", "line_width", "print_json", "print_note", "set_wide",
]  # fmt: skip

FORMATS = ("table", "markdown", "json", "csv")


def add_format_option(parser: argparse.ArgumentParser, formats: Sequence[str] = FORMATS) -> None:
    """`--format table|markdown|json|csv` (the first is the default) and `--json` as its shorthand."""
    parser.add_argument(
        "--format",
        choices=formats,
        default=formats[0],
        type=_format_name,
        help=f"output format (default {formats[0]})",
    )
    parser.add_argument(
        "--json",
        dest="format",
        action="store_const",
        const="json",
        help="shorthand for --format json",
    )
    parser.add_argument("--wide", action="store_true", help=f"do not fit tables to {WIDTH} columns")


def add_results_option(parser: argparse.ArgumentParser, positional: bool = False) -> None:
    """`--results PATH...` (default ./results); with `positional`, bare paths work the same."""
    if positional:
        parser.add_argument(
            "paths", nargs="*", metavar="RESULTS", help="result files or folders (= --results)"
        )
    parser.add_argument(
        "--results",
        nargs="+",
        metavar="PATH",
        default=None,
        help="result files (.parquet) or folders of them (default: ./results)",
    )


def results_paths(args: argparse.Namespace) -> list[str]:
    """The paths a verb reads: the ones given, else ./results (a clear error when it is absent)."""
    from pathlib import Path

    from sdbench.errors import BadInput

    given = [*(getattr(args, "paths", None) or []), *(args.results or [])]
    if given:
        return given
    if not Path("results").is_dir():
        raise BadInput(
            "No results to read: ./results does not exist here. Run a suite first "
            "(sdbench run quick) or pass --results PATH (result files or folders)."
        )
    return ["results"]


def print_record(output_format: str, record: dict) -> None:
    """One answer as JSON, one CSV row or a two-column markdown table (`table` prints its own text)."""
    # Imported here, not at the top: it loads pandas, and every verb registers through this module.
    from sdbench.export import csv

    if output_format == "json":
        print_json(record)
    elif output_format == "csv":
        print_rows("csv", list(record), [], [record])
    else:
        print(format_markdown(["field", "value"], [[k, csv.cell(v)] for k, v in record.items()]))


def _format_name(text: str) -> str:
    return "table" if text == "text" else text  # `text`, the older name of `table`, still works


def print_rows(
    output_format: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    records: Sequence[dict] | None = None,
) -> None:
    """Rows as an aligned table, a markdown table or CSV; JSON prints `records` (Parquet names)."""
    from sdbench.export import csv

    if output_format == "json":
        print_json(
            list(records)
            if records is not None
            else [dict(zip(headers, r, strict=True)) for r in rows]
        )
    elif output_format == "csv":
        if records is not None:
            csv.write_records(sys.stdout, records)
        else:
            csv.write_rows(sys.stdout, headers, rows)
    elif output_format == "markdown":
        print(format_markdown(headers, rows))
    else:
        print(format_table(headers, rows))


def format_markdown(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table of values as the text table shows them, escaped by the markdown exporter."""
    return markdown_table(headers, [[format_cell(v) for v in row] for row in rows])
