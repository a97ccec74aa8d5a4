"""JSON output: plain Python values (lists, not arrays; null, not NaN), Parquet column names."""

from __future__ import annotations

import json
import math
import sys
from typing import Any


def plain(value: Any) -> Any:
    """`value` as JSON can hold it: numpy scalars and arrays as Python values, NaN and inf as None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not hasattr(value, "__len__"):  # a numpy scalar, not an array
        try:
            return plain(value.item())
        except (ValueError, AttributeError):
            pass
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple) or (hasattr(value, "tolist") and not isinstance(value, str)):
        items = value.tolist() if hasattr(value, "tolist") else value
        return [plain(v) for v in items]
    return value


def frame_records(frame) -> list[dict]:
    """A DataFrame's rows as plain dicts (lists, not arrays; None, not NaN) for JSON and text."""
    return [plain(record) for record in frame.astype(object).to_dict("records")]


def print_json(data: Any) -> None:
    # One write of the whole text: json.dump writes each token, ~0.2 s for a fleet's `best`.
    sys.stdout.write(json.dumps(plain(data), indent=2, default=str) + "\n")
