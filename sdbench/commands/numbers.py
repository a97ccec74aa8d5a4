"""Numbers on the command line: argparse types that refuse NaN, infinity and values out of range.

argparse turns the ArgumentTypeError into exit code 2 with one line naming the flag and the
value, before anything runs.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def bounded(
    low: float, high: float, *, integer: bool = False, above: bool = False
) -> Callable[[str], float | int]:
    """A parser for a finite number from `low` (exclusive when `above`) to `high` inclusive."""
    kind = "a whole number" if integer else "a number"
    span = f"above {low:g} and at most {high:g}" if above else f"from {low:g} to {high:g}"

    def parse(text: str) -> float | int:
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {kind}; give {kind} {span}"
            ) from None
        inside = value > low if above else value >= low
        if not math.isfinite(value) or not inside or value > high:
            raise argparse.ArgumentTypeError(f"must be {kind} {span}, got {text}")
        return value

    parse.__name__ = "whole number" if integer else "number"  # argparse names the type so
    return parse


BATCH_SIZE = bounded(1, 4096, integer=True)
STEPS = bounded(1, 1000, integer=True)
PERCENT = bounded(0, 1000)


def add_threshold_option(parser: argparse.ArgumentParser, change: str) -> None:
    """`--threshold PCT`: the practical threshold compare and history share (default 5%)."""
    parser.add_argument(
        "--threshold",
        type=PERCENT,
        default=5.0,
        metavar="PCT",
        help=f"smallest {change} that counts (default 5)",
    )
