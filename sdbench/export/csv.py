"""CSV output: one row per record, list and mapping cells as JSON text (`--format csv` and the
report's results.csv alike)."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from typing import IO, Any

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype

from sdbench.export.json import plain


def cell(value: Any) -> Any:
    """A CSV cell: lists and mappings as JSON text, NaN as empty, numpy scalars as Python values."""
    value = plain(value)
    return json.dumps(value, allow_nan=False) if isinstance(value, list | dict) else value


def write_rows(stream: IO[str], headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows([cell(v) for v in row] for row in rows)


def write_records(stream: IO[str], records: Sequence[dict]) -> None:
    """Records under the keys of the first one (Parquet column names)."""
    keys = list(records[0]) if records else []
    write_rows(stream, keys, [[record.get(k) for k in keys] for record in records])


def frame_csv(frame: pd.DataFrame) -> bytes:
    """Every column of a results frame as UTF-8 CSV; list columns (samples, warnings) as JSON."""
    flat = frame.copy()
    for name in flat.columns:
        if _may_hold_lists(flat[name]):
            flat[name] = flat[name].map(_json_list)
    return flat.to_csv(index=False).encode("utf-8")


def _may_hold_lists(column: pd.Series) -> bool:
    """Whether a cell of `column` is a list or an array: only object columns can hold one, and
    pandas tells text-only and empty ones apart without a Python call per cell."""
    if column.dtype != object or infer_dtype(column, skipna=True) in ("string", "empty"):
        return False
    return column.map(lambda v: hasattr(v, "__len__") and not isinstance(v, str)).any()


def _json_list(value: object) -> str | None:
    """A list cell as JSON text (NaN inside it as null: JSON has no NaN); a missing one as empty."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype.kind in "biuf":
        # A numeric array (samples_ms): its Python numbers in one call, not one plain() each.
        items = value.tolist()
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            items = [item if math.isfinite(item) else None for item in items]
        return json.dumps(items, allow_nan=False)
    return json.dumps(plain(list(value)), allow_nan=False)
