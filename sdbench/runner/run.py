"""Run a suite end to end: expand, execute on workers, journal every row, write the Parquet file.

The manager side: never imports torch. A killed run is continued with `resume`, which reads the
journal, skips finished cells and writes the same single Parquet file.
"""

from __future__ import annotations

import secrets
import sys
import threading
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console

from sdbench.cell import Cell, Measure
from sdbench.devices import present_devices
from sdbench.errors import BadInput
from sdbench.runner.environment import host_environment
from sdbench.runner.executor import LocalExecutor
from sdbench.runner.progress import RunProgress, summary_table
from sdbench.store.files import write_run
from sdbench.store.journal import Journal, journal_path, read_journal
from sdbench.store.schema import SCHEMA_VERSION
from sdbench.suite import expand, load_suite, parse_suite
from sdbench.suite.load import parse_device


@dataclass
class RunOutcome:
    run_id: str
    path: Path | None
    rows: list[dict]
    interrupted: bool = False

    @property
    def status_counts(self) -> Counter:
        return Counter(row["status"] for row in self.rows)


def new_run_id(suite_name: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in suite_name)[:40] or "suite"
    return f"{stamp}-{safe}-{secrets.token_hex(3)}"


def plan(suite_path: str, device: str | None = None) -> tuple[object, list[Cell], list[dict]]:
    """The suite, its cells on this machine's devices, and those devices (for --dry-run and run)."""
    suite = load_suite(suite_path)
    if device is not None:
        suite = replace(
            suite, matrix={**suite.matrix, "device": (parse_device(device, "--device"),)}
        )
    devices = present_devices()
    cells = expand(suite, [d["id"] for d in devices])
    if not cells:
        raise BadInput(
            f"{suite_path}: every cell is excluded; nothing to run. Loosen the [[exclude]] rules."
        )
    return suite, cells, devices


def make_row(
    run_id: str,
    suite_name: str,
    started_at: str,
    cell: Cell,
    result: dict,
    environment: dict,
    host: dict,
) -> dict:
    row = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "cell_id": cell.cell_id,
        "suite": suite_name,
        "started_at": started_at,
        **cell.to_dict(),
        **host,
        **environment,
        **result,
    }
    row.setdefault("device_name", None)
    return row


def run_suite(
    suite_path: str | None,
    out_dir: str | Path = "results",
    device: str | None = None,
    resume: str | None = None,
    executor: str = "local",
    executor_options: dict | None = None,
    console: Console | None = None,
) -> RunOutcome:
    out_dir = Path(out_dir)
    console = console or Console(stderr=True)
    if resume:
        run_id, header, done_rows = _resume_state(out_dir, resume)
        suite = parse_suite(header["suite_text"], source=header["suite_path"])
        cells = [Cell.from_dict(c) for c in header["cells"]]
    else:
        suite, cells, _ = plan(suite_path, device)
        run_id = new_run_id(suite.name)
        header = {
            "run_id": run_id,
            "suite_name": suite.name,
            "suite_path": suite.path,
            "suite_text": suite.text,
            "started_at": datetime.now(timezone.utc).isoformat(),
            "measure": suite.measure.__dict__,
            "cells": [c.to_dict() for c in cells],
        }
        done_rows = []
        out_dir.mkdir(parents=True, exist_ok=True)
        Journal(journal_path(out_dir, run_id)).write_header(header)
    journal = Journal(journal_path(out_dir, run_id))
    done_ids = {row["cell_id"] for row in done_rows}
    todo = [c for c in cells if c.cell_id not in done_ids]
    rows = list(done_rows)
    lock = threading.Lock()
    host = host_environment()
    measure = Measure(**header["measure"])
    pool = _executor(executor, measure, suite.options, executor_options or {})
    console.print(
        f"run [bold]{run_id}[/]: {len(todo)} cells to measure"
        + (f", {len(done_rows)} already done" if done_rows else "")
    )
    interrupted = False
    with RunProgress(total=len(cells), done=len(done_rows), console=console) as progress:

        def on_result(cell: Cell, result: dict, environment: dict) -> None:
            row = make_row(
                run_id, suite.name, header["started_at"], cell, result, environment, host
            )
            with lock:
                journal.append_row(row)
                rows.append(row)
            progress.finished(cell.label(), row["status"], row.get("median_ms"))

        try:
            pool.run(todo, on_result)
        except KeyboardInterrupt:
            interrupted = True
    order = {c.cell_id: i for i, c in enumerate(cells)}
    rows.sort(key=lambda r: order.get(r["cell_id"], len(order)))
    path = out_dir / f"{run_id}.parquet"
    if interrupted:
        console.print(
            f"[yellow]Interrupted.[/] {len(rows)} of {len(cells)} cells are saved in the journal. "
            f"Continue with: sdbench run --resume {run_id} --out {out_dir}"
        )
        return RunOutcome(run_id, None, rows, interrupted=True)
    write_run(rows, path)
    journal.path.unlink(missing_ok=True)
    return RunOutcome(run_id, path, rows)


def _resume_state(out_dir: Path, resume: str) -> tuple[str, dict, list[dict]]:
    run_id = Path(resume).name.removesuffix(".parquet").removesuffix(".journal.jsonl").lstrip(".")
    if (out_dir / f"{run_id}.parquet").exists() and not journal_path(out_dir, run_id).exists():
        raise BadInput(
            f"Run {run_id} in {out_dir} is already complete; there is nothing to resume."
        )
    header, rows = read_journal(journal_path(out_dir, run_id))
    return run_id, header, rows


def _executor(name: str, measure: Measure, options: dict, executor_options: dict):
    if name == "local":
        return LocalExecutor(
            measure, skip_larger_after_oom=options.get("skip_larger_after_oom", True)
        )
    if name == "ray":
        from sdbench.runner.ray_executor import RayExecutor

        return RayExecutor(
            measure,
            skip_larger_after_oom=options.get("skip_larger_after_oom", True),
            **executor_options,
        )
    raise BadInput(f'Unknown executor "{name}". Use local or ray.')


def print_summary(outcome: RunOutcome, console: Console | None = None) -> None:
    console = console or Console(width=None if sys.stdout.isatty() else 160)
    console.print(summary_table(outcome.rows))
    counts = outcome.status_counts
    not_ok = sum(v for k, v in counts.items() if k != "ok")
    text = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    console.print(
        f"{len(outcome.rows)} cells: {text}" + (f" ({not_ok} did not finish ok)" if not_ok else "")
    )
    if outcome.path:
        console.print(f"results: {outcome.path}")
    sys.stdout.flush()
