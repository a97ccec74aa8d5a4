"""Write one immutable Parquet file per run, atomically (`sdbench.store.read` reads them back)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

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


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write bytes to `path` the way `write_run` writes a run: a hidden temporary, then a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
        _sync_folder(path.parent)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def output_error(path: str | Path, error: OSError) -> BadInput:
    """A file that could not be written, as one paragraph: what failed and what to do."""
    return BadInput(
        f'Cannot write "{path}": {error.strerror or error}. Nothing was written there. Give '
        "--out a folder you can write to (not an existing file), or free some disk space."
    )


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
