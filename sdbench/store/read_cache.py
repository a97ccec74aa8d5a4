"""The read cache: a results folder's rows kept as one Arrow file, so a fleet reads at once.

Reading 1,000 small run files costs Arrow's per-file set-up, seconds in all, whatever their size.
`sdbench.store.read` therefore keeps what it read, every row of every run file concatenated, in
one Arrow IPC file under `$XDG_CACHE_HOME/sdbench/reads/` (default `~/.cache/sdbench`), one per
set of paths read, with a manifest saying which rows came from which file and each file's
identity: absolute path, inode, size, modification and change times. The next read of the same
paths stats every file (milliseconds) and maps the cache; only files added since are read.

The cache can never answer with rows a file no longer holds:
- a file changed or removed since (any part of its identity differs) makes the whole cache
  stale and the reader reads every file again (run files are immutable, so this is rare);
- a file modified within two seconds of the read that cached it is left out of the cache and
  read again next time: file-system timestamps are coarse, and a rewrite of the same size in
  the same tick would otherwise look unchanged (Git's "racily clean" index entries, the same cure);
- a cache written by another version of this format, sdbench's schema or pyarrow is not used.

The cache only saves time: a cache that cannot be read or written is ignored (the folder is
read as if there were none), and `SDBENCH_READ_CACHE=off` turns it off. It keeps the eight
most recently used path sets of 20 files or more; fewer are read directly.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from sdbench.atomic import write_atomic
from sdbench.store.schema import SCHEMA_VERSION
from sdbench.usercache import cache_dir, keep_newest

FORMAT_VERSION = 1  # bump when what the reader keeps per file changes (its skip rules, columns)
MANIFEST_KEY = b"sdbench.read_cache"
KEPT_PATH_SETS = 8
MIN_FILES = 20  # fewer are read directly
RACY_NS = 2_000_000_000  # files modified this close to a read are read again next time


@dataclass(frozen=True)
class FileRows:
    """One run file's part of the concatenated table: rows [start, stop), or why it was skipped."""

    start: int = 0
    stop: int = 0
    runs: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    skipped: str | None = None


def for_read(paths: list[Path], files: list[Path], every_column: bool) -> ReadCache | None:
    """The cache for this read, or None: it keeps whole rows only, and a few files read as fast
    without one (the per-file cost is milliseconds; a cache per `sdbench show RUN` would only
    push the fleet's out of the eight kept)."""
    wanted = os.environ.get("SDBENCH_READ_CACHE", "on").lower() not in ("off", "0", "no", "false")
    return ReadCache(paths, files) if wanted and every_column and len(files) >= MIN_FILES else None


def _identity(file: Path) -> list[int] | None:
    """What changes when a file is replaced or rewritten: inode, size, mtime and ctime in ns."""
    try:
        stat = file.stat()
    except OSError:
        return None  # gone since it was listed: read, it raises the reader's own error
    return [stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


@dataclass
class Cached:
    """A usable cache: its table (memory-mapped) and each cached file's rows, in table order."""

    table: pa.Table
    layout: dict[Path, FileRows]


class ReadCache:
    """The cache of one set of paths read, and the identity of each of their files now."""

    def __init__(self, paths: list[Path], files: list[Path]) -> None:
        self.started_ns = time.time_ns()
        self.path = cache_file(paths)
        # Absolute, not resolved: `results_files` resolved each file already, and the cache file
        # is keyed on the resolved paths given (reached through another link, it only misses).
        self.names = {file: os.path.abspath(file) for file in files}
        self.identities = {file: _identity(file) for file in files}

    def load(self) -> Cached | None:
        """The cache, if every file it holds is still there unchanged; None otherwise."""
        try:  # the map stays open while the table's buffers need it
            table = ipc.open_file(pa.memory_map(str(self.path))).read_all()
            manifest = json.loads(table.schema.metadata[MANIFEST_KEY])
        except (OSError, pa.ArrowException, KeyError, TypeError, ValueError):
            return None
        if manifest.get("key") != _key():
            return None
        files = {name: file for file, name in self.names.items()}
        column_sets = [tuple(names) for names in manifest["column_sets"]]
        layout: dict[Path, FileRows] = {}
        for name, identity, start, stop, runs, columns, skipped in manifest["files"]:
            file = files.get(name)
            if file is None or self.identities[file] != identity:
                return None  # changed or removed: the reader reads every file again
            layout[file] = FileRows(start, stop, tuple(runs), column_sets[columns], skipped)
        _touch(self.path)  # recently used: kept when older path sets are evicted
        return Cached(table.replace_schema_metadata(None), layout)

    def save(self, table: pa.Table, layout: dict[Path, FileRows]) -> None:
        """Keep `table` (the rows of `layout`'s files, in its order) less racily-clean files."""
        settled = {
            file: rows
            for file, rows in layout.items()
            if self.identities[file] is not None
            and self.identities[file][2] < self.started_ns - RACY_NS
        }
        if not settled:
            self.path.unlink(missing_ok=True)  # stale, if there was one
            return
        if len(settled) < len(layout):
            table, settled = rows_of(table, settled)
        column_sets: dict[tuple[str, ...], int] = {}
        files = [
            [
                self.names[file],
                self.identities[file],
                rows.start,
                rows.stop,
                list(rows.runs),
                column_sets.setdefault(rows.columns, len(column_sets)),
                rows.skipped,
            ]
            for file, rows in settled.items()
        ]
        manifest = {"key": _key(), "column_sets": list(column_sets), "files": files}
        table = table.combine_chunks().replace_schema_metadata(
            {MANIFEST_KEY: json.dumps(manifest).encode()}
        )
        try:
            _write(self.path, table)
            keep_newest(self.path.parent.glob("*.arrow"), KEPT_PATH_SETS)
        except (OSError, pa.ArrowException):
            pass  # a cache is an optimisation: an unwritable one changes nothing else


def cache_file(paths: list[Path]) -> Path:
    given = sorted(str(Path(p).resolve()) for p in paths)
    digest = hashlib.sha256(json.dumps(given).encode()).hexdigest()[:20]
    return cache_dir() / "reads" / f"{digest}.arrow"


def _key() -> list:
    return [FORMAT_VERSION, SCHEMA_VERSION, pa.__version__]


def rows_of(table: pa.Table, layout: dict[Path, FileRows]) -> tuple[pa.Table, dict[Path, FileRows]]:
    """The rows of `layout`'s files, in its order, and where each file's rows now sit."""
    moved, ranges, start = {}, [], 0
    for file, rows in layout.items():
        count = rows.stop - rows.start
        moved[file] = FileRows(start, start + count, rows.runs, rows.columns, rows.skipped)
        ranges.append(np.arange(rows.start, rows.stop))
        start += count
    order = np.concatenate(ranges) if ranges else np.array([], dtype=np.int64)
    if len(order) == table.num_rows and (order == np.arange(len(order))).all():
        return table, moved  # already so: no copy
    return table.take(order), moved


def _write(path: Path, table: pa.Table) -> None:
    """Atomically (`write_atomic`): a reader never maps half a cache."""
    sink = pa.BufferOutputStream()
    with ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    write_atomic(path, sink.getvalue())


def _touch(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.utime(path)
