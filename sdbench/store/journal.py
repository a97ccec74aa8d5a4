"""The run journal: one JSON line per finished cell, fsynced, so a killed run loses at most one cell.

The first line is a header describing the run (suite text, devices, cells); every later line is
one result row. A last line cut short by a crash is ignored when read and cut off before the
journal is appended to again. A write that fails (a full disk) is rolled back to the last
complete line, so the journal stays readable and `--resume` can continue it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sdbench.errors import BadInput

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent resumes are not detected there
    fcntl = None


def journal_path(out_dir: Path, run_id: str) -> Path:
    return Path(out_dir) / f".{run_id}.journal.jsonl"


def _clean(value: Any) -> Any:
    """JSON has no NaN: a non-finite float is stored as null (not measured / not meaningful)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


class Journal:
    """Append-only JSONL with an fsync per line."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def write_header(self, header: dict) -> None:
        """Create the journal; fails if one exists already (two runs never share a journal)."""
        try:
            _append_synced(self.path, _line({"header": header}), os.O_CREAT | os.O_EXCL)
        except OSError:
            with contextlib.suppress(OSError):
                if self.path.stat().st_size == 0:  # ours, and empty: leave no husk behind
                    self.path.unlink()
            raise

    def append_row(self, row: dict) -> None:
        # Opening per line keeps no handle across a fork and survives a disk that fills mid-run.
        _append_synced(self.path, _line({"row": row}), 0)

    def repair(self) -> int:
        """Cut off a last line left half-written by a crash; returns how many bytes were cut.

        A last line that is whole but lacks only its newline (the write stopped one byte short)
        is kept and given its newline: it is the header of a run, or a finished cell.
        """
        with open(self.path, "rb+") as handle:
            data = handle.read()
            keep = data.rfind(b"\n") + 1
            if keep == len(data):
                return 0
            if _complete(data[keep:]):
                handle.seek(0, os.SEEK_END)
                handle.write(b"\n")
                handle.flush()
                os.fsync(handle.fileno())
                return 0
            handle.truncate(keep)
            os.fsync(handle.fileno())
            return len(data) - keep

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold an exclusive lock for a run, so a second `--resume` of it is refused, not mixed in."""
        if fcntl is None:
            yield
            return
        with open(self.path, "a", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise BadInput(
                    f'Another sdbench process is writing "{self.path}" right now. Wait for it to '
                    "finish (or stop it) before resuming this run."
                ) from None
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _complete(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False


def _line(record: dict) -> bytes:
    return (json.dumps(_clean(record), default=str, allow_nan=False) + "\n").encode()


def _append_synced(path: Path, line: bytes, flags: int) -> None:
    """Append one whole line and fsync it; on failure, cut the file back and re-raise.

    Unbuffered writes: a buffered file would retry a failed write when closed, after the cut.
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | flags, 0o666)
    try:
        start = os.fstat(fd).st_size
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError:
            # If even the cut fails, the torn line is ignored by read_journal and cut by repair().
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
            raise
    finally:
        os.close(fd)


def read_journal(path: Path) -> tuple[dict, list[dict]]:
    """The header and every complete row of a journal; a torn last line is skipped."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(
            f'No journal at "{path}": nothing to resume. Check the run id and --out folder.'
        )
    header: dict | None = None
    rows: dict[str, dict] = {}
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # half-written when the process died
            if not isinstance(record, dict):
                continue
            if "header" in record and header is None:
                header = record["header"]
            elif "row" in record and isinstance(record["row"], dict):
                row = record["row"]
                rows[row.get("cell_id", str(len(rows)))] = row  # the last word on a cell wins
    if header is None:
        raise BadInput(f'Journal "{path}" has no header line; it is not an sdbench journal.')
    return header, list(rows.values())
