"""`sdbench show [RUN]`: a past run's summary: where and when it ran, its cells and warnings.

RUN is a run id, the start of one, or a results file; without it, the latest run in the results
folders (by run id, which starts with its UTC start time)."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLES = """examples:
  sdbench show                          the latest run in ./results
  sdbench show 20261126T015114Z         the run whose id starts so
  sdbench show --results ci/ --format json  the latest run in ci/, as JSON
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from sdbench.commands.output import add_format_option, add_results_option

    parser = subparsers.add_parser("show", help="a past run's summary: its cells and warnings")
    parser.add_argument("run", nargs="?", metavar="RUN", help="run id (or its start) or file")
    add_results_option(parser)
    add_format_option(parser)
    parser.set_defaults(func=handler)


def find_run(run: str | None, paths: list[str]) -> Path:
    """The results file of `run` (id, id prefix or path) among `paths`; the latest when None."""
    from sdbench.errors import BadInput, did_you_mean
    from sdbench.store import results_files
    from sdbench.store.read import distinct_run_files

    if run and Path(run).is_file():
        return Path(run)
    files = results_files(paths)
    if not files:
        raise BadInput(
            f"No result files in {', '.join(paths)}. Run a suite first (sdbench run quick)."
        )
    if run is None:
        latest = max(f.stem for f in files)
        return distinct_run_files([f for f in files if f.stem == latest])[0]
    # A run copied into two folders is one run (warned about), as every reader counts it.
    found = distinct_run_files([f for f in files if f.stem.startswith(run)])
    if len(found) == 1:
        return found[0]
    where = ", ".join(paths)
    if len({f.stem for f in found}) < len(found):  # same run id, different rows: name the files
        names = ", ".join(f'"{f}"' for f in found[:6])
        raise BadInput(f'"{run}" is in {len(found)} files that differ: {names}. Give one file.')
    if found:
        names = ", ".join(f.stem for f in found[:6])
        raise BadInput(f'"{run}" starts {len(found)} run ids in {where}: {names}. Give more of it.')
    latest = ", ".join(sorted((f.stem for f in files), reverse=True)[:3])
    raise BadInput(
        f'No run "{run}" in {where}.{did_you_mean(run, [f.stem for f in files])} '
        f"The latest runs: {latest}."
    )


def handler(args: argparse.Namespace) -> int:
    from sdbench.commands.output import (
        frame_records,
        print_json,
        print_note,
        print_rows,
        results_paths,
    )
    from sdbench.export.table import format_grouped, run_cells_table
    from sdbench.quality import warning_lines
    from sdbench.store import read_results

    path = find_run(args.run, results_paths(args))
    frame = read_results([path]).drop(columns=["samples_ms"], errors="ignore")
    rows = frame_records(frame)
    summary = run_summary(rows, path)
    if args.format == "json":
        print_json({**summary, "cells": rows})
        return 0
    if args.format != "table":
        print_rows(args.format, *run_cells_table(rows), rows)
        return 0
    print(format_grouped(*run_cells_table(rows), column=0))
    print()
    for line in warning_lines(rows, max_lines=10):
        print_note(f"warning: {line}")
    counts = ", ".join(f"{n} {status}" for status, n in summary["counts"].items())
    print(f"{summary['run_id']} · suite {summary['suite']} · {summary['started_at']}")
    print(f"{summary['device_names']} on {summary['host']} · {len(rows)} cells: {counts}")
    print(f"allocator {summary['allocator']}" + _allocator_note(summary["allocator"]))
    print(f"results: {path}")
    return 0


def run_summary(rows: list[dict], path: Path) -> dict:
    """Where and when a run ran and how its cells ended (the header `show` prints)."""
    from collections import Counter

    def distinct(key: str) -> str:
        return ", ".join(dict.fromkeys(str(r[key]) for r in rows if r.get(key) is not None)) or "-"

    return {
        "run_id": distinct("run_id"),
        "suite": distinct("suite"),
        "started_at": min((str(r["started_at"]) for r in rows if r.get("started_at")), default="-"),
        "device_names": distinct("device_name"),
        "host": distinct("host"),
        "allocator": distinct("allocator"),
        "counts": dict(sorted(Counter(str(r.get("status")) for r in rows).items())),
        "path": str(path),
    }


def _allocator_note(allocator: str) -> str:
    """Why the allocator line matters: CPU timings of runs with different settings differ."""
    if allocator == "-":
        return " (not recorded: a run from before sdbench recorded it)"
    if "," in allocator:
        return " (settings differ between rows: their CPU timings are not comparable)"
    return " (compare its CPU timings only with runs of the same [options] allocator)"
