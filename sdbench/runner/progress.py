"""Live progress of a run (cells done / total, current cell, ETA) and the summary at its end."""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from sdbench.runner.estimate import EtaClock
from sdbench.units import duration_text


class RunProgress:
    """A rich progress bar on a terminal; one plain line per finished cell otherwise (CI logs).

    The bar fills by each cell's expected cost, not by cell count, and its ETA comes from an
    `EtaClock` (the remaining cells' expected cost, scaled by how the finished ones went).
    """

    def __init__(
        self,
        clock: EtaClock,
        total: int,
        done: int = 0,
        console: Console | None = None,
    ):
        self.console = console or Console(stderr=True)
        self.clock = clock
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
                TextColumn("{task.fields[cells]}"),
                TimeElapsedColumn(),
                _EtaColumn(self.eta_text),
                console=self.console,
            )
            self._task = self._progress.add_task(
                "starting workers",
                total=1.0,
                completed=clock.fraction_done,
                cells=self._cells(),
            )

    def __enter__(self) -> RunProgress:
        if self._progress:
            self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress:
            self._progress.stop()

    def _cells(self) -> str:
        return f"{self.done}/{self.total} cells"

    def eta_text(self) -> str:
        """ "ETA 4 min 10 s"; "done" once no cell is left; "ETA overdue" while cells are left but
        the estimate is spent (a cell running far past its expected cost), not "ETA 0.00 ms"."""
        if self.done >= self.total:
            return "done"
        remaining_s = self.clock.remaining_s(time.monotonic() - self._start)
        return f"ETA {duration_text(remaining_s)}" if remaining_s > 0 else "ETA overdue"

    def finished(
        self, cell_id: str, label: str, status: str, median_ms: float | None, ran: bool = True
    ) -> None:
        """A cell's row is in; `ran` False for one no worker spent time on (see EtaClock)."""
        with self._lock:
            self.done += 1
            self.statuses[status] += 1
            elapsed = time.monotonic() - self._start
            self.clock.finish(cell_id, elapsed, ran)
            figure = f"{median_ms:.1f} ms" if median_ms is not None else status
            if self._progress:
                self._progress.update(
                    self._task,
                    completed=self.clock.fraction_done,
                    description=f"{label}: {figure}",
                    cells=self._cells(),
                )
            else:
                eta = self.eta_text()
                where = f"{elapsed:.0f}s" if eta == "done" else f"{elapsed:.0f}s, {eta}"
                print(
                    f"[{self.done}/{self.total} {where}] {status:<11} {label}  {figure}",
                    file=sys.stderr,
                    flush=True,
                )


class _EtaColumn(ProgressColumn):
    """The run's ETA text, recomputed at every refresh so it counts down while a long cell runs."""

    def __init__(self, eta: Callable[[], str]):
        super().__init__()
        self._eta_text = eta

    def render(self, task) -> Text:
        return Text(self._eta_text())


def summary_rows(rows: Sequence[dict], limit: int) -> list[dict]:
    """At most `limit` rows, those not ok first (they need attention), in the run's order."""
    if len(rows) <= limit:
        return list(rows)
    not_ok = [i for i, row in enumerate(rows) if row.get("status") != "ok"][:limit]
    ok = [i for i, row in enumerate(rows) if row.get("status") == "ok"][: limit - len(not_ok)]
    return [rows[i] for i in sorted(not_ok + ok)]
