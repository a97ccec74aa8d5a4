"""Turn files written by `pytest --benchmark-json FILE` (with or without --sdbench-suite) into
results files that compare, history and report read. One Parquet file per JSON file; re-ingesting a
file rewrites the same run."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

EXAMPLES = """examples:
  sdbench ingest bench.json --out results/ci  pytest-benchmark JSON into results Parquet
  sdbench ingest a.json b.json                one results file per JSON file, in ./results
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ingest", help="convert pytest-benchmark JSON into results Parquet files"
    )
    parser.add_argument("files", nargs="+", metavar="PYTEST_BENCHMARK_JSON")
    parser.add_argument(
        "--out",
        default="results",
        metavar="DIR",
        help="folder for the Parquet files (default results)",
    )
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from sdbench.ingest import ingest_rows
    from sdbench.store.files import output_error, write_run

    runs = [ingest_rows(file) for file in args.files]  # every file checked before one is written
    for file, (run_id, rows) in zip(args.files, runs, strict=True):
        path = Path(args.out) / f"{run_id}.parquet"
        try:
            write_run(rows, path)
        except OSError as error:
            raise output_error(path, error) from None
        counts = Counter(row["status"] for row in rows)
        detail = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        machines = ", ".join(sorted({str(row["machine"]) for row in rows}))
        print(f"{file} -> {path} ({len(rows)} cells on {machines}: {detail})")
    return 0
