"""The run journal: one JSON line per finished cell, fsynced, so a killed run loses at most one cell.

The first line is a header describing the run (suite text, devices, cells); every later line is
one result row. A last line cut short by a crash is ignored.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from sdbench.errors import BadInput


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
        self._append({"header": header})

    def append_row(self, row: dict) -> None:
        self._append({"row": row})

    def _append(self, record: dict) -> None:
        line = json.dumps(_clean(record), default=str, allow_nan=False) + "\n"
        # Opening per line keeps no handle across a fork and survives a disk that fills mid-run:
        # a failed write raises here, before anything already written is touched.
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())


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
