"""`sdbench compare A B --across-machines`: a hardware comparison per shared cell, never a verdict."""

from __future__ import annotations

import argparse
import math
import sys

import pandas as pd

from sdbench.commands.output import format_table, human_bytes, print_json, print_rows
from sdbench.export.escape import markdown as markdown_escape
from sdbench.export.markdown import markdown_table

HEADERS = ["cell", "baseline", "current", "latency", "ratio (95% CI)", "speed", "memory", "J/image"]


def print_hardware_comparison(
    baseline: pd.DataFrame, current: pd.DataFrame, args: argparse.Namespace
) -> int:
    """Print the comparison in `args.format`; exit 0 whatever it shows (it judges no code)."""
    from sdbench.analysis.machines import compare_machines
    from sdbench.machine import identity_differences

    table = compare_machines(baseline, current)
    differences = identity_differences(baseline, current)
    records = table.astype(object).where(table.notna(), None).to_dict("records")
    if args.format == "csv":
        print_rows("csv", [], [], records)
        return 0
    if args.format == "json":
        print_json(
            {
                "across_machines": True,
                "differences": differences,
                "cells": int(table["cell_id"].nunique()),
                "rows": records,
            }
        )
        return 0
    rows = [_cells(row) for _, row in table.iterrows()]
    headline = _headline(table, differences)
    if args.format == "markdown":
        lines = [f"### sdbench compare across machines: {markdown_escape(headline)}", ""]
        lines += markdown_table(HEADERS, rows).split("\n")
        sys.stdout.write("\n".join(lines) + "\n")
        return 0
    body = format_table(HEADERS, rows) + "\n\n" if rows else ""
    sys.stdout.write(body + f"sdbench compare --across-machines: {headline}\n")
    return 0


def _headline(table: pd.DataFrame, differences: list[str]) -> str:
    shared = table["cell_id"].nunique()
    timed = table.dropna(subset=["ratio"])
    text = f"{shared} shared cell{'s' * (shared != 1)}"
    if len(timed):
        ratios = timed["ratio"].to_numpy()
        geomean = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
        text += f"; current/baseline latency, geometric mean over {len(timed)}: ×{geomean:.3g}"
    if differences:
        text += "; machines differ in " + "; ".join(differences)
    return text + ". No regression verdict between machines."


def _cells(row: pd.Series) -> list[str]:
    return [
        str(row["label"]),
        str(row["baseline_machine"]),
        str(row["current_machine"]),
        _latency(row),
        _ratio(row),
        _speed(row),
        f"{human_bytes(_value(row['baseline_memory_bytes']))} → "
        f"{human_bytes(_value(row['current_memory_bytes']))}",
        f"{_joules(row['baseline_energy_per_image_j'])} → "
        f"{_joules(row['current_energy_per_image_j'])}",
    ]


def _value(value: object) -> float | None:
    return None if value is None or pd.isna(value) else float(value)  # type: ignore[arg-type]


def _latency(row: pd.Series) -> str:
    if _value(row["ratio"]) is None:
        return f"{row['baseline_status']} / {row['current_status']}"
    return f"{row['baseline_ms']:.4g} → {row['current_ms']:.4g} ms"


def _ratio(row: pd.Series) -> str:
    ratio, low, high = (_value(row[n]) for n in ("ratio", "ratio_ci_low", "ratio_ci_high"))
    if ratio is None:
        return "-"
    return f"{ratio:.3f}" + (f" ({low:.3f}-{high:.3f})" if low is not None and high else "")


def _speed(row: pd.Series) -> str:
    speedup = _value(row["speedup"])
    if speedup is None:
        return "-"
    return f"{speedup:.2f}× faster" if speedup >= 1 else f"{1 / speedup:.2f}× slower"


def _joules(value: object) -> str:
    number = _value(value)
    return "-" if number is None else f"{number:.3g} J"
