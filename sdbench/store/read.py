"""Read thousands of run files at once: parallel file reads, one concatenation, one conversion.

Layout for a fleet: every run is one immutable `<run_id>.parquet` whose id is unique (UTC time,
suite name and 24 random bits) and which appears by an atomic rename, so any number of hosts can
write into one shared folder at once without locks or conflicts. Fleets should write one
subfolder per host (`sdbench run ... --out results/$(hostname)`) to keep folders small on
network file systems; this reader, like `results_files`, walks nested folders and skips names
starting with "." or "_" (files being written, journals).

Run files are small (one row per cell), so the cost is per file, not per row. Reading them on a
thread pool (Arrow releases the GIL) and converting to pandas once is several times faster than
converting file by file and concatenating DataFrames; a `pyarrow.dataset` scan of the same files
measured slower than both (its per-fragment overhead dominates at about 100 rows a file).
Files may differ in their extra columns (a newer sdbench added one; a column was all-null in one
run): nulls are promoted to the other files' types, so every row and column comes back.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sdbench.errors import BadInput
from sdbench.machine import with_machine_columns
from sdbench.store.schema import (
    COLUMNS,
    IDENTITY_COLUMNS,
    REPORT_COPY_KEY,
    SCHEMA_VERSION,
    with_levers,
)

READ_THREADS = 8  # more than the cores: file opens wait on the file system (NFS), not the CPU


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
    return with_machine_columns(with_levers(frame))  # lever-less files ran with every lever off


def _unreadable(file: Path, error: BaseException) -> BadInput:
    return BadInput(
        f'"{file}" is not a readable sdbench results file ({error}). It may be truncated or '
        "corrupt: remove it or re-run the suite that made it."
    )


def _read_file(file: Path, columns: Sequence[str] | None) -> pa.Table | str:
    """The file's rows, or why it is skipped (another tool's Parquet, a report's copy)."""
    try:
        parquet = pq.ParquetFile(file)
        schema = parquet.schema_arrow
        older_report = file.name == "results.parquet" and (file.parent / "index.html").is_file()
        if REPORT_COPY_KEY in (schema.metadata or {}) or older_report:
            return "a report's copy of results it read, not a run"
        missing = [c for c in IDENTITY_COLUMNS if c not in schema.names]
        if missing:
            return f"not an sdbench results file (no {', '.join(missing)} column)"
        wanted = None if columns is None else [c for c in columns if c in schema.names]
        return parquet.read(columns=wanted, use_threads=False)
    except (pa.ArrowException, OSError, ValueError) as error:
        raise _unreadable(file, error) from None


def read_results_table(
    paths: Iterable[str | Path], columns: Sequence[str] | None = None
) -> pa.Table:
    """Every row of the run files in `paths` (files or folders) as one Arrow table, file order.

    `columns` reads only those columns (a listing that needs no samples skips the biggest one).
    """
    paths = list(paths)
    files = results_files(paths)
    if not files:
        raise BadInput(
            "No result files found in "
            + ", ".join(str(p) for p in paths)
            + ". Run `sdbench run SUITE` first."
        )
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        read = list(pool.map(lambda file: _read_file(file, columns), files))
    for file, skipped in zip(files, read, strict=True):
        if isinstance(skipped, str):
            print(f'sdbench: warning: skipped "{file}": {skipped}.', file=sys.stderr)
    tables = [table for table in read if not isinstance(table, str)]
    if not tables:
        raise BadInput(
            "No sdbench result files found in "
            + ", ".join(str(p) for p in paths)
            + " (only files skipped above). Run `sdbench run SUITE` first."
        )
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise BadInput(
            f"These results files disagree on a column's type ({error}). Read the older and "
            "newer runs in separate calls, or re-run the older suite with this sdbench."
        ) from None


def read_results(paths: Iterable[str | Path], columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Every row of the run files in `paths` (files or folders) as one DataFrame, file order.

    With every column (`columns` None), rows of older schema versions gain the current core
    columns as nulls; with `columns`, only those that exist are read, as they are.
    """
    frame = read_results_table(paths, columns).to_pandas()
    return upgrade(frame) if columns is None else frame
