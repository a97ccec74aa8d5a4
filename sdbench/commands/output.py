"""Shared output helpers for CLI verbs: the --format/--json/--wide and --results options, and
rows as a table, markdown, CSV or JSON that uses Parquet column names."""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Sequence
from typing import Any

from sdbench.report.escape import markdown
from sdbench.report.text import (
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
    "WIDTH", "footnotes", "format_cell", "format_grouped", "format_table", "human_bytes",
    "line_width", "print_json", "print_note", "set_wide",
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
    if output_format == "json":
        print_json(record)
    elif output_format == "csv":
        print_rows("csv", list(record), [], [record])
    else:
        print(format_markdown(["field", "value"], [[k, _csv_value(v)] for k, v in record.items()]))


def _format_name(text: str) -> str:
    return "table" if text == "text" else text  # `text`, the older name of `table`, still works


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
            writer.writerows([_csv_value(record.get(k)) for k in keys] for record in records)
        else:
            writer.writerow(headers)
            writer.writerows([_csv_value(v) for v in row] for row in rows)
    elif output_format == "markdown":
        print(format_markdown(headers, rows))
    else:
        print(format_table(headers, rows))


def _csv_value(value: Any) -> Any:
    value = _plain(value)
    return json.dumps(value) if isinstance(value, list | dict) else value


def format_markdown(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table; values escaped (pipes, line breaks, control characters, HTML)."""
    lines = ["| " + " | ".join(markdown(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(markdown(format_cell(v)) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not hasattr(value, "__len__"):  # a numpy scalar, not an array
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


def frame_records(frame) -> list[dict]:
    """A DataFrame's rows as plain dicts (lists, not arrays; None, not NaN) for JSON and text."""
    return [_plain(record) for record in frame.astype(object).to_dict("records")]


def print_json(data: Any) -> None:
    json.dump(_plain(data), sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
