"""Write one immutable Parquet file per run, atomically (`sdbench.store.read` reads them back)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sdbench.atomic import write_atomic
from sdbench.errors import BadInput
from sdbench.machine import with_machine
from sdbench.store.schema import COLUMNS, SCHEMA_VERSION, SCHEMA_VERSION_KEY


def _table(rows: Sequence[dict]) -> pa.Table:
    rows = [with_machine(row) for row in rows]
    names = list(COLUMNS) + sorted({k for row in rows for k in row} - set(COLUMNS))
    arrays, fields = [], []
    for name in names:
        values = [row.get(name) for row in rows]
        if name == "started_at":
            values = [pd.Timestamp(v).tz_convert("UTC") if v is not None else None for v in values]
        dtype = COLUMNS.get(name)
        array = pa.array(values, type=dtype) if dtype is not None else pa.array(values)
        arrays.append(array)
        fields.append(pa.field(name, array.type))
    metadata = {SCHEMA_VERSION_KEY: str(SCHEMA_VERSION).encode()}
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=metadata))


def write_run(rows: Sequence[dict], path: str | Path) -> Path:
    """Write rows to `path` through a temporary file in the same folder and an atomic rename.

    The temporary name starts with "." so readers of the folder never pick up a partial file;
    it is created with the usual umask permissions so a shared results folder stays readable.
    """
    sink = pa.BufferOutputStream()
    # No dictionary pages: a run holds a few rows, so a dictionary saves no space, and its page
    # costs every reader of a fleet (a 113-column run file decodes about 13% faster without).
    pq.write_table(_table(rows), sink, use_dictionary=False)
    return write_atomic(path, sink.getvalue().to_pybytes())


def output_error(path: str | Path, error: OSError) -> BadInput:
    """A file that could not be written, as one paragraph: what failed and what to do."""
    return BadInput(
        f'Cannot write "{path}": {error.strerror or error}. Nothing was written there. Give '
        "--out a folder you can write to (not an existing file), or free some disk space."
    )
