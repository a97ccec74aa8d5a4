"""Write one immutable Parquet file per run, atomically, and read many of them back."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sdbench.errors import BadInput
from sdbench.levers import LEVERS
from sdbench.store.schema import COLUMNS, SCHEMA_VERSION


def _table(rows: Sequence[dict]) -> pa.Table:
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
    metadata = {b"sdbench_schema_version": str(SCHEMA_VERSION).encode()}
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=metadata))


def write_run(rows: Sequence[dict], path: str | Path) -> Path:
    """Write rows to `path` through a temporary file in the same folder and an atomic rename.

    The temporary name starts with "." so readers of the folder never pick up a partial file;
    it is created with the usual umask permissions so a shared results folder stays readable.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = _table(rows)
    temporary = path.parent / f".{path.stem}.{secrets.token_hex(4)}.tmp"
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        pq.write_table(table, temporary)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
        _sync_folder(path.parent)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


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


def results_files(paths: Iterable[str | Path]) -> list[Path]:
    """Run files named directly or found in folders; names starting with . or _ are skipped."""
    found: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found += sorted(
                p
                for p in path.rglob("*.parquet")
                if not any(part[0] in "._" for part in p.relative_to(path).parts)
            )
        elif path.is_file():
            found.append(path)
        else:
            raise BadInput(
                f'"{path}" does not exist. Give result files (.parquet) or folders of them.'
            )
    return found


def read_results(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Every row of the given run files (or folders), as one DataFrame with the core columns.

    Files are read in parallel and converted once (see `sdbench.store.dataset`), which keeps
    thousands of runs to seconds.
    """
    from sdbench.store.dataset import read_results_dataset  # dataset imports this module

    return read_results_dataset(paths)


def upgrade(frame: pd.DataFrame) -> pd.DataFrame:
    """Bring rows of any supported schema version to the current columns (missing ones as null)."""
    if "schema_version" in frame and (frame["schema_version"] > SCHEMA_VERSION).any():
        raise BadInput(
            f"These results were written by a newer sdbench (schema {int(frame['schema_version'].max())}); "
            f"this one reads up to {SCHEMA_VERSION}. Upgrade sdbench."
        )
    for name in COLUMNS:
        if name not in frame:
            frame[name] = None
    for lever in LEVERS:  # files from before the lever axes ran with every lever off
        frame[lever] = frame[lever].fillna("none").astype(object)
    return frame
