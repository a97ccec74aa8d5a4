"""Order each cell's runs by started_at and find the runs where the metric stepped to a new level
(exact L1 step detection with a noise-scaled penalty; steps under --threshold are merged away)."""

from __future__ import annotations

import argparse
import sys

from sdbench.commands.numbers import add_threshold_option
from sdbench.commands.output import (
    add_format_option,
    add_results_option,
    print_rows,
    results_paths,
)

EXAMPLES = """examples:
  sdbench history  change points of median_ms across ./results
  sdbench history --results ci/ --metric peak_mem_reserved_bytes
                   memory steps across CI runs
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("history", help="change points of a metric across many runs")
    add_results_option(parser, positional=True)
    parser.add_argument(
        "--metric", default="median_ms", help="numeric results column (default median_ms)"
    )
    add_threshold_option(parser, "step")
    add_format_option(parser)
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from sdbench.analysis.history import cell_series, change_points
    from sdbench.commands.compare import format_value
    from sdbench.store import read_results

    frame = read_results(results_paths(args))
    changes = change_points(frame, metric=args.metric, min_change_pct=args.threshold)
    if args.format in ("json", "csv"):
        print_rows(
            args.format,
            [],
            [],
            changes.astype(object).where(changes.notna(), None).to_dict("records"),
        )
        return 0
    series = cell_series(frame, args.metric)
    rows = [
        [
            str(row["started_at"])[:19],
            row["run_id"],
            row["label"],
            format_value(args.metric, row["before"]),
            format_value(args.metric, row["after"]),
            f"{row['change_pct']:+.1f}%",
        ]
        for _, row in changes.iterrows()
    ]
    if rows or args.format == "markdown":
        headers = ["started_at", "run_id", "cell", "before", "after", "change"]
        print_rows(args.format, headers, rows)
        print()
    sys.stdout.write(
        f"{len(changes)} change point{'s' * (len(changes) != 1)} in {args.metric} over "
        f"{series['run_id'].nunique()} runs of {series['cell_id'].nunique()} cells "
        f"{_on_machines(series)}"
        f"(steps under {args.threshold:g}% ignored)\n"
    )
    return 0


def _on_machines(series) -> str:
    machines = series["machine_id"].nunique()
    return f"on {machines} machines, each its own series " if machines > 1 else ""
