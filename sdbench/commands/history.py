"""`sdbench history RESULTS...`: the runs where a cell's metric stepped to a new level."""

from __future__ import annotations

import argparse
import sys

from sdbench.commands.numbers import PERCENT
from sdbench.commands.output import format_table, print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "history",
        help="change points of a metric across many runs",
        description=(
            "Order each cell's runs by started_at and find the runs where the metric stepped to a new level "
            "(exact L1 step detection with a noise-scaled penalty; steps under --threshold are merged away)."
        ),
    )
    parser.add_argument("results", nargs="+", metavar="RESULTS", help="results files or folders")
    parser.add_argument(
        "--metric", default="median_ms", help="numeric results column (default median_ms)"
    )
    parser.add_argument(
        "--threshold",
        type=PERCENT,
        default=5.0,
        metavar="PCT",
        help="smallest step that counts (default 5)",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from sdbench.analysis.history import cell_series, change_points
    from sdbench.commands.compare import format_value
    from sdbench.store import read_results

    frame = read_results(args.results)
    changes = change_points(frame, metric=args.metric, min_change_pct=args.threshold)
    if args.format == "json":
        print_json(changes.astype(object).where(changes.notna(), None).to_dict("records"))
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
    if rows:
        headers = ["started_at", "run_id", "cell", "before", "after", "change"]
        sys.stdout.write(format_table(headers, rows) + "\n\n")
    sys.stdout.write(
        f"{len(changes)} change point{'s' * (len(changes) != 1)} in {args.metric} over "
        f"{series['run_id'].nunique()} runs of {series['cell_id'].nunique()} cells "
        f"(steps under {args.threshold:g}% ignored)\n"
    )
    return 0
