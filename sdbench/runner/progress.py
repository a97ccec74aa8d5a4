"""Live progress of a run (cells done / total, current cell, ETA) and the summary at its end."""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table


class RunProgress:
    """A rich progress bar on a terminal; one plain line per finished cell otherwise (CI logs)."""

    def __init__(self, total: int, done: int = 0, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.total, self.done = total, done
        self.statuses: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._live = self.console.is_terminal
        self._start = time.monotonic()
        self._progress = None
        if self._live:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
            )
            self._task = self._progress.add_task("starting workers", total=total, completed=done)

    def __enter__(self) -> RunProgress:
        if self._progress:
            self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress:
            self._progress.stop()

    def finished(self, label: str, status: str, median_ms: float | None) -> None:
        with self._lock:
            self.done += 1
            self.statuses[status] += 1
            figure = f"{median_ms:.1f} ms" if median_ms is not None else status
            if self._progress:
                self._progress.update(self._task, advance=1, description=f"{label}: {figure}")
            else:
                elapsed = time.monotonic() - self._start
                print(
                    f"[{self.done}/{self.total} {elapsed:.0f}s] {status:<11} {label}  {figure}",
                    file=sys.stderr,
                    flush=True,
                )


def summary_table(rows: Sequence[dict]) -> Table:
    """A compact table of a run's rows for the terminal."""
    table = Table(title="sdbench run summary", show_lines=False)
    for header in (
        "model",
        "stage",
        "res",
        "bs",
        "prec",
        "attn",
        "status",
        "median ms",
        "it/s",
        "img/s",
        "TFLOP/s",
        "peak mem",
    ):
        table.add_column(
            header,
            justify="right"
            if header[0].islower() and header not in ("model", "stage", "prec", "attn", "status")
            else "left",
        )
    for row in rows:
        table.add_row(
            row["model"],
            row["stage"],
            f"{row['width']}x{row['height']}",
            str(row["batch_size"]),
            row["precision"],
            row["attention"] + ("" if row["compile"] == "none" else f"+{row['compile']}"),
            row["status"] + ("" if row.get("fidelity_ok") in (True, None) else " (fidelity!)"),
            _fmt(row.get("median_ms"), ".1f"),
            _fmt(row.get("it_per_s"), ".2f"),
            _fmt(row.get("images_per_s"), ".3g"),
            _fmt(row.get("tflops_per_s"), ".3g"),
            _bytes(row.get("peak_mem_reserved_bytes") or row.get("peak_rss_bytes")),
        )
    return table


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _bytes(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**30:.2f} GiB"
