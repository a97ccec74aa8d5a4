"""Check one results row against the schema before it is stored: types, ranges and statuses.

Rows come from the worker (through the journal) and from files users hand in (`ingest`); both
are checked here, so a row that `compare`, `history` or `report` would trip over never reaches
a Parquet file. Nulls are allowed everywhere except the identity and outcome columns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd
import pyarrow as pa

from sdbench.store.schema import ALLOCATORS, COLUMNS, STATUSES

REQUIRED = ("run_id", "cell_id", "status")
POSITIVE_INTS = {"schema_version", "height", "width", "batch_size", "steps"}
MAX_INT = 2**63 - 1
# Figures that cannot be negative: every unit-suffixed column and the counts and rates.
NON_NEGATIVE_SUFFIXES = ("_ms", "_s", "_j", "_w", "_bytes", "_mhz", "_gbps", "_pct")
NON_NEGATIVE = {
    "n_samples",
    "warmup",
    "recompiles",
    "gpu_count",
    "flops",
    "it_per_s",
    "images_per_s",
    "tflops_per_s",
    "mfu",
    "peak_tflops",
    "datasheet_tflops",
    "ref_max_abs_err",
    "ref_rel_err",
}


def show(value: Any, limit: int = 60) -> str:
    """repr() of a value as one short printable line, for error messages."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def row_problem(row: Mapping[str, Any]) -> str | None:
    """What is wrong with a row, naming the field and value, or None when it can be stored."""
    for name in REQUIRED:
        if row.get(name) is None:
            return f'field "{name}" is missing'
    for name, value in row.items():
        if not isinstance(name, str):
            return f"field name {show(name)} is not text"
        problem = value_problem(name, value)
        if problem:
            return f'field "{name}" = {show(value)}: {problem}'
    return None


def value_problem(name: str, value: Any) -> str | None:
    """Why `value` cannot be stored in column `name`, or None."""
    if value is None:
        return None
    dtype = COLUMNS.get(name)
    if dtype is None:
        return _extra_problem(name, value)
    if pa.types.is_list(dtype):
        if not isinstance(value, list | tuple):
            return "a list was expected"
        item = dtype.value_type
        problems = (_scalar_problem(name, v, item) for v in value)
        return next((f"an item {p}" for p in problems if p), None)
    problem = _scalar_problem(name, value, dtype)
    if problem is None and name == "status" and value not in STATUSES:
        return f"not a status; allowed: {', '.join(STATUSES)}"
    if problem is None and name == "allocator" and value not in ALLOCATORS:
        return f"not an allocator setting; allowed: {', '.join(ALLOCATORS)}"
    if problem is None and name in POSITIVE_INTS and value < 1:
        return "must be 1 or more"
    return problem


def _scalar_problem(name: str, value: Any, dtype: pa.DataType) -> str | None:
    if pa.types.is_string(dtype):
        return None if isinstance(value, str) else "text was expected"
    if pa.types.is_boolean(dtype):
        return None if isinstance(value, bool) else "true or false was expected"
    if pa.types.is_timestamp(dtype):
        return _time_problem(value)
    if pa.types.is_integer(dtype):
        if isinstance(value, bool) or not isinstance(value, int):
            return "a whole number was expected"
        if abs(value) > MAX_INT:
            return "too large"
    elif isinstance(value, bool) or not isinstance(value, int | float):
        return "a number was expected"
    return _number_problem(name, value)


def _number_problem(name: str, value: float) -> str | None:
    if not math.isfinite(value):
        return "must be a finite number"
    if value < 0 and (name in NON_NEGATIVE or name.endswith(NON_NEGATIVE_SUFFIXES)):
        return "cannot be negative"
    return None


def _time_problem(value: Any) -> str | None:
    if not isinstance(value, str | pd.Timestamp):
        return "a time (ISO 8601 text) was expected"
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        return "not a time (ISO 8601, e.g. 2026-12-01T12:00:00+00:00)"
    return "not a time" if stamp is pd.NaT else None


def _extra_problem(name: str, value: Any) -> str | None:
    """Columns this sdbench does not know: plain JSON values only, figures finite."""
    if isinstance(value, str | bool):
        return None
    if isinstance(value, int | float):
        return _extra_number_problem(name, value)
    if isinstance(value, list | tuple):
        kinds = {_kind(v) for v in value if v is not None}
        if len(kinds) > 1 or None in kinds:  # Parquet stores a list of one kind
            return "a list of text, of numbers or of true/false was expected"
        numbers = [v for v in value if v is not None] if kinds == {"number"} else []
        problems = (_extra_number_problem(name, v) for v in numbers)
        return next((p for p in problems if p), None)
    return "text, a number, true/false or a list of them was expected"


def _extra_number_problem(name: str, value: float) -> str | None:
    if isinstance(value, int) and abs(value) > MAX_INT:
        return "a whole number beyond 64 bits cannot be stored"
    return _number_problem(name, value)


def _kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "text" if isinstance(value, str) else None
