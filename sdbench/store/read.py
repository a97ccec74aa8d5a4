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

Each run counts once. A run file copied into two folders (a backup, a second host's sync) is read
from one of them with a warning naming both; so is a copy taken before the run finished, when the
whole run is also there. Two files with the same run_id whose rows differ otherwise (a copy edited
by hand) are both kept, with a warning: their rows may be different machines' results, and
dropping either would lose data. Only files that share their run ids are compared, so a folder of
distinct runs costs nothing more.
"""

from __future__ import annotations

import filecmp
import os
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sdbench.errors import BadInput
from sdbench.machine import with_machine_columns
from sdbench.store import read_cache
from sdbench.store.read_cache import Cached, FileRows, rows_of
from sdbench.store.schema import (
    COLUMNS,
    IDENTITY_COLUMNS,
    REPORT_COPY_KEY,
    SCHEMA_VERSION,
    SCHEMA_VERSION_KEY,
    with_levers,
)


def _read_threads() -> int:
    """One thread a core: decoding is CPU work, and a thread beyond the cores only queues for
    the GIL (each file's Python steps hold it); 8 threads on 2 cores measured slower than 2."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(32, cores or 1))


def results_files(paths: Iterable[str | Path]) -> list[Path]:
    """Run files named directly or found in folders; names starting with . or _ are skipped."""
    found: dict[
        Path, Path
    ] = {}  # by resolved path: a file named twice (a folder and its file) is one
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for p in sorted(path.rglob("*.parquet")):
                if not any(part[0] in "._" for part in p.relative_to(path).parts):
                    found.setdefault(p.resolve(), p)
        elif path.is_file():
            found.setdefault(path.resolve(), path)
        else:
            raise BadInput(
                f'"{path}" does not exist. Give result files (.parquet) or folders of them.'
            )
    return list(found.values())


def upgrade(frame: pd.DataFrame) -> pd.DataFrame:
    """Bring rows of any supported schema version to the current columns (missing ones as null)."""
    if "schema_version" in frame and (frame["schema_version"] > SCHEMA_VERSION).any():
        raise BadInput(
            f"These results were written by a newer sdbench (schema {int(frame['schema_version'].max())}); "
            f"this one reads up to {SCHEMA_VERSION}. Upgrade sdbench."
        )
    missing = [name for name in COLUMNS if name not in frame]
    if missing:  # in one step: a column at a time fragments the frame (pandas warns, and slows)
        nulls = {name: np.full(len(frame), None, dtype=object) for name in missing}
        frame = pd.concat([frame, pd.DataFrame(nulls, index=frame.index)], axis=1)
    return with_machine_columns(with_levers(frame))  # lever-less files ran with every lever off


def _unreadable(file: Path, error: BaseException) -> BadInput:
    return BadInput(
        f'"{file}" is not a readable sdbench results file ({error}). It may be truncated or '
        "corrupt: remove it or re-run the suite that made it."
    )


def _read_file(file: Path, columns: Sequence[str] | None) -> pa.Table | str:
    """The file's rows, or why it is skipped (another tool's Parquet, a report's copy).

    The footer is parsed once: its key-value metadata and the read table's schema answer the
    checks, where `ParquetFile.schema_arrow` would convert the footer a second time (a tenth of
    the time a 113-column run file takes). Names the file lacks are not read.
    """
    try:
        parquet = pq.ParquetFile(file)
        metadata = parquet.metadata.metadata or {}
        older_report = file.name == "results.parquet" and (file.parent / "index.html").is_file()
        if REPORT_COPY_KEY in metadata or older_report:
            return "a report's copy of results it read, not a run"
        # A file sdbench did not write may be big: look at its columns before reading it all.
        if SCHEMA_VERSION_KEY not in metadata and _lacks_identity(parquet.schema_arrow.names):
            return _not_a_run(parquet.schema_arrow.names)
        # run_id always: each run is counted once (`_once_per_run`) whatever else is read.
        wanted = None if columns is None else list(dict.fromkeys([*columns, *IDENTITY_COLUMNS]))
        table = parquet.read(columns=wanted, use_threads=False)
    except (pa.ArrowException, OSError, ValueError) as error:
        raise _unreadable(file, error) from None
    if _lacks_identity(table.column_names):
        return _not_a_run(table.column_names)
    if columns is None:
        return table
    return table.select([c for c in dict.fromkeys([*columns, "run_id"]) if c in table.column_names])


def _lacks_identity(names: Sequence[str]) -> bool:
    return not set(IDENTITY_COLUMNS) <= set(names)


def _not_a_run(names: Sequence[str]) -> str:
    missing = [c for c in IDENTITY_COLUMNS if c not in names]
    return f"not an sdbench results file (no {', '.join(missing)} column)"


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
    table, layout = _read_files(paths, files, columns)
    for file, rows in layout.items():
        if rows.skipped is not None:
            _warn(f'skipped "{file}": {rows.skipped}.')
    kept = _once_per_run({file: rows.runs for file, rows in layout.items() if rows.skipped is None})
    if not kept:
        raise BadInput(
            "No sdbench result files found in "
            + ", ".join(str(p) for p in paths)
            + " (only files skipped above). Run `sdbench run SUITE` first."
        )
    table, _ = rows_of(table, {file: layout[file] for file in kept})
    if columns is not None and "run_id" not in columns:
        table = table.drop_columns(["run_id"])
    return table


def _read_files(
    paths: list[Path], files: list[Path], columns: Sequence[str] | None
) -> tuple[pa.Table, dict[Path, FileRows]]:
    """Every file's rows as one table in file order, and where each file's rows sit in it.

    Reads of every column go through the read cache (`read_cache`): files it holds unchanged
    come from it, only the others are read, and the cache is updated.
    """
    cache = read_cache.for_read(paths, files, every_column=columns is None)
    cached = cache.load() if cache else None
    if cached is not None and list(cached.layout) == files:
        return cached.table, cached.layout  # nothing new: no file is opened
    misses = [file for file in files if cached is None or file not in cached.layout]
    with ThreadPoolExecutor(max_workers=_read_threads()) as pool:
        read = dict(
            zip(misses, pool.map(lambda file: _read_file(file, columns), misses), strict=True)
        )
    table, layout = _assemble(files, cached, read)
    if cache:
        table = table.combine_chunks()  # once, for the cache and the caller alike
        cache.save(table, layout)
    return table, layout


def _assemble(
    files: list[Path], cached: Cached | None, read: dict[Path, pa.Table | str]
) -> tuple[pa.Table, dict[Path, FileRows]]:
    """The cached rows and the rows just read as one table, rows and columns in file order."""
    tables = [cached.table] if cached else []
    layout = dict(cached.layout) if cached else {}
    offset = sum(table.num_rows for table in tables)
    for file, table in read.items():
        if isinstance(table, str):
            layout[file] = FileRows(skipped=table)
            continue
        columns = tuple(table.column_names)
        layout[file] = FileRows(offset, offset + table.num_rows, _runs(table), columns)
        tables.append(table)
        offset += table.num_rows
    try:
        table = _concat(tables) if tables else pa.table({})
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise BadInput(
            f"These results files disagree on a column's type ({error}). Read the older and "
            "newer runs in separate calls, or re-run the older suite with this sdbench."
        ) from None
    table, layout = rows_of(table, {file: layout[file] for file in files})
    # columns in order of first appearance, file by file, as reading every file would give
    names = list(dict.fromkeys(name for rows in layout.values() for name in rows.columns))
    return (table if table.column_names == names else table.select(names)), layout


def _runs(table: pa.Table) -> tuple[str, ...]:
    return tuple(sorted(str(run) for run in pc.unique(table["run_id"]).to_pylist()))


def _concat(tables: list[pa.Table]) -> pa.Table:
    """One table; unifying schemas only when the files' differ (a third of the cost otherwise)."""
    try:
        return pa.concat_tables(tables)
    except pa.ArrowInvalid:
        return pa.concat_tables(tables, promote_options="permissive")


def distinct_run_files(files: Sequence[Path]) -> list[Path]:
    """`files` in order, less copies of a run another of them holds (warned about, as on read).

    For commands that pick files by name before reading them (`sdbench show RUN`).
    """
    tables = {file: _read_file(file, ["run_id"]) for file in files}
    kept = set(_once_per_run({f: _runs(t) for f, t in tables.items() if isinstance(t, pa.Table)}))
    return [file for file in files if file in kept or isinstance(tables[file], str)]


def _once_per_run(runs_of: dict[Path, tuple[str, ...]]) -> list[Path]:
    """The files in order, leaving out copies of a run another file already holds."""
    by_runs: dict[tuple[str, ...], list[Path]] = {}
    for file, runs in runs_of.items():
        by_runs.setdefault(runs, []).append(file)
    dropped: set[Path] = set()
    for runs, files in by_runs.items():
        if len(files) > 1:
            dropped |= _copies_to_leave_out(", ".join(runs), files)
    return [file for file in runs_of if file not in dropped]


def _copies_to_leave_out(runs: str, files: list[Path]) -> set[Path]:
    """Of files holding the same run(s), those another file already holds whole; each warned about."""
    kept: list[tuple[Path, pa.Table]] = []
    dropped: set[Path] = set()
    for file in files:
        content = _comparable(file)
        for index, (other, other_content) in enumerate(kept):
            if filecmp.cmp(file, other, shallow=False) or content.equals(other_content):
                _warn(f'"{file}" is a copy of "{other}" (run {runs}); the run is counted once.')
                dropped.add(file)
                break
            if _part_of(content, other_content) or _part_of(other_content, content):
                part, whole = (
                    (file, other) if content.num_rows < other_content.num_rows else (other, file)
                )
                small, large = sorted((content.num_rows, other_content.num_rows))
                _warn(
                    f'"{part}" holds {small} of the {large} cells of run {runs} that "{whole}" '
                    "holds (a copy taken before the run finished?); the run is counted once, "
                    f'from "{whole}".'
                )
                dropped.add(part)
                kept[index] = (whole, content if whole == file else other_content)
                break
        else:
            for other, other_content in kept:
                _warn(
                    f'"{other}" and "{file}" both hold run {runs} but differ in '
                    f"{_differences(other_content, content)}; both are counted. If one is a "
                    "copy edited by hand, give the edited copy its own run_id; if one is stale, "
                    "remove it."
                )
            kept.append((file, content))
    return dropped


def _comparable(file: Path) -> pa.Table:
    """Every column of the file, in name order, rows in cell order: equal copies compare equal."""
    table = pq.read_table(file)
    return table.select(sorted(table.column_names)).sort_by("cell_id")


def _part_of(part: pa.Table, whole: pa.Table) -> bool:
    """Whether every row of `part` is a row of `whole`, which has more (compared by cell)."""
    if part.num_rows >= whole.num_rows or part.schema != whole.schema:
        return False
    return whole.filter(pc.is_in(whole["cell_id"], part["cell_id"])).equals(part)


def _differences(first: pa.Table, second: pa.Table) -> str:
    """ "host, machine_id" or "rows (3 vs 5)": what tells two same-run files apart, briefly."""
    if first.num_rows != second.num_rows:
        return f"rows ({first.num_rows} vs {second.num_rows})"
    names = sorted(set(first.column_names) ^ set(second.column_names))
    if names:
        return "columns (" + ", ".join(names[:5]) + " only in one)"
    differ = [name for name in first.column_names if not first[name].equals(second[name])]
    return ", ".join(differ[:5]) or "column types"


def _warn(message: str) -> None:
    print(f"sdbench: warning: {message}", file=sys.stderr)


def read_results(paths: Iterable[str | Path], columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Every row of the run files in `paths` (files or folders) as one DataFrame, file order.

    With every column (`columns` None), rows of older schema versions gain the current core
    columns as nulls; with `columns`, only those that exist are read, as they are.
    """
    # One chunk per column, not one per file: pandas keeps Arrow strings chunked as read, and
    # every take or filter of a 1,000-file fleet's frame then cost ~80 ms per string column.
    frame = read_results_table(paths, columns).combine_chunks().to_pandas()
    return upgrade(frame) if columns is None else frame
