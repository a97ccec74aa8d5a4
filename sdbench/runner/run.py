"""Run a suite end to end: expand, execute on workers, journal every row, write the Parquet file.

The manager side: never imports torch. A killed run is continued with `resume`, which reads the
journal, skips finished cells and writes the same single Parquet file. Ctrl-C abandons the cells
in flight, keeps every finished cell in the journal (no Parquet file yet) and prints how to resume.
"""

from __future__ import annotations

import contextlib
import secrets
import shlex
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.text import Text

from sdbench.cell import Cell, Measure
from sdbench.devices import present_devices
from sdbench.errors import BadInput, SdbenchError
from sdbench.export.table import WIDTH, format_grouped, run_cells_table
from sdbench.quality import warning_lines
from sdbench.runner.environment import host_environment
from sdbench.runner.estimate import EtaClock, device_peaks, estimate_cells
from sdbench.runner.executor import LocalExecutor, ResultCallback, group_cells
from sdbench.runner.interrupt import deferred, discard
from sdbench.runner.measurement import Measurement
from sdbench.runner.progress import RunProgress, summary_rows
from sdbench.runner.worker import ALLOCATOR_ENV, cpu_threads
from sdbench.store.files import write_run
from sdbench.store.journal import Journal, journal_path, read_journal
from sdbench.store.schema import SCHEMA_VERSION
from sdbench.store.validate import row_problem, show
from sdbench.suite import Suite, expand, load_suite, parse_suite
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
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in suite_name)[:40] or "suite"
    return f"{stamp}-{safe}-{secrets.token_hex(3)}"


def plan(
    suite_path: str, device: str | None = None, device_ids: list[str] | None = None
) -> tuple[object, list[Cell], list[dict]]:
    """The suite, its cells on the given device ids (default: this machine's), and the devices.

    A Ray driver plans against the cluster's device lanes, not its own hardware.
    """
    suite = load_suite(suite_path)
    if device is not None:
        suite = replace(
            suite, matrix={**suite.matrix, "device": (parse_device(device, "--device"),)}
        )
    devices = present_devices() if device_ids is None else [{"id": d} for d in device_ids]
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


@dataclass
class _Run:
    """What a run needs after it is planned (new) or read back from its journal (resumed)."""

    run_id: str
    out_dir: Path
    header: dict
    suite: Suite
    cells: list[Cell]
    done_rows: list[dict]
    skipped: list[str] = field(default_factory=list)  # journal rows set aside, and why

    @property
    def journal(self) -> Journal:
        return Journal(journal_path(self.out_dir, self.run_id))

    def resume_command(self) -> str:
        return f"sdbench run --resume {shlex.quote(self.run_id)} --out {shlex.quote(str(self.out_dir))}"


def run_suite(
    suite_path: str | None,
    out_dir: str | Path = "results",
    device: str | None = None,
    resume: str | None = None,
    executor: str = "local",
    executor_options: dict | None = None,
    console: Console | None = None,
) -> RunOutcome:
    """Measure every cell not yet done; on Ctrl-C keep the journal and say how to resume.

    Every finished cell is in the journal before the run goes on; the Parquet file is written
    once, atomically, when every cell has a row, and only then is the journal removed.
    """
    out_dir = Path(out_dir)
    console = console or Console(stderr=True)
    cpu_threads()  # a bad SDBENCH_CPU_THREADS is bad input before anything runs
    run_id = _run_id_of(resume) if resume else None
    if resume:
        _check_resumable(out_dir, run_id, suite_path, device)
    else:
        device_ids = None
        if (
            executor == "ray"
        ):  # fail on a missing ray before anything is written; plan on the cluster
            from sdbench.runner.ray_executor import RayExecutor, import_ray

            import_ray()
            device_ids = RayExecutor(Measure(), **(executor_options or {})).devices()
        run_id = _start_new(suite_path, out_dir, device, device_ids)
    with Journal(journal_path(out_dir, run_id)).locked():
        run = _load(out_dir, run_id)
        rows = list(run.done_rows)
        try:
            _execute(run, rows, executor, executor_options or {}, console)
            path = _write_results(run, rows)
        except KeyboardInterrupt:
            with deferred():  # a second Ctrl-C must not cut the hint short
                console.print(
                    Text("Interrupted.", style="yellow"),
                    f"{len(rows)} of {len(run.cells)} cells are saved in "
                    f"the journal {run.journal.path}; the cell in flight was abandoned. "
                    f"Continue with: {run.resume_command()}",
                    highlight=False,
                    markup=False,  # paths are printed as they are, never read as markup
                )
            discard()  # that second Ctrl-C is spent: the run is ending anyway
            return RunOutcome(run_id, None, _in_cell_order(run, rows), interrupted=True)
    run.journal.path.unlink(missing_ok=True)
    return RunOutcome(run_id, path, rows)


def _run_id_of(resume: str) -> str:
    name = Path(resume).name.removesuffix(".parquet").removesuffix(".journal.jsonl")
    return name.lstrip(".")


def _check_resumable(
    out_dir: Path, run_id: str, suite_path: str | None = None, device: str | None = None
) -> None:
    if suite_path or device:
        given = f'the suite "{suite_path}"' if suite_path else f'--device "{device}"'
        raise BadInput(
            f"--resume {run_id} continues the run exactly as it started (its suite and devices are "
            f"in its journal), so {given} cannot be used with it. Drop it, or start a new run "
            "without --resume."
        )
    if (out_dir / f"{run_id}.parquet").exists() and not journal_path(out_dir, run_id).exists():
        raise BadInput(
            f"Run {run_id} in {out_dir} is already complete; there is nothing to resume."
        )
    if not journal_path(out_dir, run_id).exists():
        raise BadInput(
            f'No journal for run "{run_id}" in {out_dir}: nothing to resume. Check the run id '
            f"and pass the folder the run wrote to with --out."
        )


def _start_new(
    suite_path: str | None, out_dir: Path, device: str | None, device_ids: list[str] | None = None
) -> str:
    """Plan the run and write its journal header; returns the new run id."""
    suite, cells, devices = plan(suite_path, device, device_ids)
    run_id = new_run_id(suite.name)
    header = {
        "run_id": run_id,
        "suite_name": suite.name,
        "suite_path": _absolute(suite.path),  # so relative weights resolve from any folder
        "suite_text": suite.text,
        "started_at": datetime.now(UTC).isoformat(),
        "measure": suite.measure.__dict__,
        "cells": [c.to_dict() for c in cells],
        "devices": [{"id": d["id"], "name": d.get("name")} for d in devices],
    }
    path = journal_path(out_dir, run_id)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        Journal(path).write_header(header)
    except OSError as error:
        raise SdbenchError(
            f'Cannot start a run in "{out_dir}": {error.strerror or error}. Free some space, fix '
            "the folder's permissions or choose another one with --out."
        ) from None
    return run_id


def _absolute(path: str) -> str:
    try:
        return str(Path(path).resolve())
    except (OSError, RuntimeError):
        return path


def _load(out_dir: Path, run_id: str) -> _Run:
    """The run as its journal describes it (a torn last line is cut off first).

    Rows that do not belong to the run's cells, or that could not be stored (a field of the
    wrong type, an unknown status), are set aside: their cells are measured again.
    """
    journal = Journal(journal_path(out_dir, run_id))
    try:
        journal.repair()
    except OSError as error:
        raise SdbenchError(f'Cannot repair "{journal.path}": {error}.') from None
    header, rows = read_journal(journal.path)
    _check_header(journal.path, run_id, header)
    try:
        suite = parse_suite(header["suite_text"], source=header["suite_path"])
        cells = [Cell.from_dict(c) for c in header["cells"]]
    except (TypeError, BadInput) as error:
        raise _bad_header(journal.path, f"its suite or cells cannot be read ({error})") from None
    done_rows, skipped = _usable_rows(run_id, header["cells"], rows)
    return _Run(run_id, out_dir, header, suite, cells, done_rows, skipped)


HEADER_FIELDS = {
    "run_id": str,
    "suite_path": str,
    "suite_text": str,
    "started_at": str,
    "measure": dict,
    "cells": list,
}


def _check_header(path: Path, run_id: str, header: object) -> None:
    if not isinstance(header, dict):
        raise _bad_header(path, "its header is not a JSON object")
    for name, kind in HEADER_FIELDS.items():
        if not isinstance(header.get(name), kind):
            raise _bad_header(path, f'its header lacks "{name}" ({kind.__name__})')
    if header["run_id"] != run_id:
        raise BadInput(
            f'Journal "{path}" belongs to run "{header["run_id"]}", not "{run_id}" (was it '
            f'renamed?). Rename it back to "{journal_path(path.parent, header["run_id"]).name}" '
            f"and resume run {header['run_id']}."
        )
    if not all(isinstance(c, dict) for c in header["cells"]) or not isinstance(
        header["measure"], dict
    ):
        raise _bad_header(path, "its header's cells are not a list of objects")
    try:
        Measure(**header["measure"])
    except TypeError as error:
        raise _bad_header(path, f"its header's measure settings are unknown ({error})") from None


def _bad_header(path: Path, why: str) -> BadInput:
    return BadInput(
        f'Journal "{path}" cannot be resumed: {why}. It was edited or is not an sdbench journal; '
        "start the run again (sdbench run SUITE)."
    )


def _usable_rows(run_id: str, cells: list[dict], rows: list[dict]) -> tuple[list[dict], list[str]]:
    """The rows that are finished cells of this run, and why each other row was set aside."""
    by_id = {Cell.from_dict(c).cell_id: c for c in cells}
    usable, skipped = [], []
    for row in rows:
        cell = by_id.get(row.get("cell_id"))
        if cell is None:
            problem = f"cell_id {show(row.get('cell_id'))} is not one of this run's cells"
        elif row.get("run_id") != run_id:
            problem = f"run_id {show(row.get('run_id'))} is not {run_id}"
        else:
            differs = next((k for k, v in cell.items() if row.get(k) != v), None)
            problem = (
                f'field "{differs}" = {show(row.get(differs))} differs from its cell\'s {show(cell[differs])}'
                if differs
                else row_problem(row)
            )
        if problem:
            skipped.append(f"cell {show(row.get('cell_id'))}: {problem}")
        else:
            usable.append(row)
    return usable, skipped


def _execute(
    run: _Run, rows: list[dict], executor: str, executor_options: dict, console: Console
) -> None:
    """Measure the cells without a row, appending each result to the journal and to `rows`."""
    done_ids = {row["cell_id"] for row in run.done_rows}
    todo = [c for c in run.cells if c.cell_id not in done_ids]
    lock = threading.Lock()
    host = host_environment()
    measure = Measure(**run.header["measure"])
    pool = _executor(executor, measure, run.suite.options, executor_options)
    journal = run.journal
    for reason in run.skipped:
        console.print(
            f"warning: journal {journal.path}: a row set aside, its cell is measured again: {reason}",
            highlight=False,
            markup=False,
        )
    console.print(
        f"run [bold]{run.run_id}[/]: {len(todo)} cells to measure"
        + (f", {len(done_ids)} already done" if done_ids else "")
    )
    clock = _eta_clock(run, measure, done_ids)
    with RunProgress(clock, total=len(run.cells), done=len(done_ids), console=console) as progress:

        def on_result(cell: Cell, result: dict, environment: dict) -> None:
            started_at = run.header["started_at"]
            row = make_row(run.run_id, run.suite.name, started_at, cell, result, environment, host)
            # A cell no worker ran (skipped after an OOM, no worker could start): the suite's setting.
            row.setdefault("allocator", run.suite.options.get("allocator", "tuned"))
            with lock:
                try:
                    journal.append_row(row)
                except OSError as error:
                    what = f"the journal {journal.path}"
                    raise _storage_error(run, what, error, len(rows)) from None
                rows.append(row)
            # Progress is not data: a closed log pipe (`| head`) must not stop a long run.
            with contextlib.suppress(OSError):
                ran = bool(result.get("cell_wall_s"))  # a worker's time, not a settled cell
                progress.finished(
                    cell.cell_id, cell.label(), row["status"], row.get("median_ms"), ran
                )

        if executor == "local":  # a Ray cluster's devices are not this host's to check
            todo = _settle_unsupported(todo, run.suite.options, on_result)
        pool.run(todo, on_result)


def _settle_unsupported(cells: list[Cell], options: dict, on_result: ResultCallback) -> list[Cell]:
    """Record the rows of the groups the capability check finds unsupported throughout, without
    starting a worker for them (each would import torch and diffusers to say so); returns the
    cells left to measure. One check subprocess per run; none for a single group, whose worker
    says as much for the same start-up cost. The workers check every cell they are sent, so a
    check that fails (DeviceError) costs only the saving: each group then goes to its worker."""
    from sdbench.errors import DeviceError
    from sdbench.runner.capability_check import unsupported_groups

    groups = group_cells(cells)
    if len(groups) < 2:
        return cells
    try:
        unsupported = unsupported_groups(groups, _worker_env(options))
    except DeviceError:
        return cells
    settled = set()
    for pairs, environment in unsupported:
        for cell, reason in pairs:
            # The fields a worker's row has: its measurement's columns and its wall time.
            result = Measurement("unsupported", reason).columns() | {"cell_wall_s": 0.0}
            on_result(cell, result, environment)
            settled.add(cell.cell_id)
    return [cell for cell in cells if cell.cell_id not in settled]


def _eta_clock(run: _Run, measure: Measure, done_ids: set[str]) -> EtaClock:
    """Expected cost per cell (devices as the run's header recorded them; older runs: by id)."""
    devices = run.header.get("devices") or [{"id": d} for d in {c.device for c in run.cells}]
    expected = estimate_cells(run.cells, measure, device_peaks(devices))
    return EtaClock(expected, {c.cell_id: c.device for c in run.cells}, done_ids)


def _write_results(run: _Run, rows: list[dict]) -> Path:
    rows[:] = _in_cell_order(run, rows)
    path = run.out_dir / f"{run.run_id}.parquet"
    try:
        return write_run(rows, path)
    except OSError as error:
        raise _storage_error(run, f'the results file "{path}"', error, len(rows)) from None


def _in_cell_order(run: _Run, rows: list[dict]) -> list[dict]:
    order = {c.cell_id: i for i, c in enumerate(run.cells)}
    return sorted(rows, key=lambda r: order.get(r["cell_id"], len(order)))


def _storage_error(run: _Run, what: str, error: OSError, saved: int) -> SdbenchError:
    if not run.journal.path.exists():
        return SdbenchError(
            f"Could not write {what}: {error.strerror or error}. The results folder "
            f'"{run.out_dir}" or its journal was removed while the run was going, so the {saved} '
            "cells finished before this are lost. Keep the folder in place and start the run "
            "again."
        )
    return SdbenchError(
        f"Could not write {what}: {error.strerror or error}. The {saved} cells finished before "
        f"this are safe in the journal {run.journal.path}. Free some disk space (or fix the "
        f"folder's permissions), then continue with: {run.resume_command()}"
    )


def _executor(name: str, measure: Measure, options: dict, executor_options: dict):
    settings = {
        "skip_larger_after_oom": options.get("skip_larger_after_oom", True),
        "worker_env": _worker_env(options),
    }
    if name == "local":
        return LocalExecutor(measure, **settings)
    if name == "ray":
        from sdbench.runner.ray_executor import RayExecutor

        return RayExecutor(measure, **settings, **executor_options)
    raise BadInput(f'Unknown executor "{name}". Use local or ray.')


def _worker_env(options: dict) -> dict[str, str]:
    return {ALLOCATOR_ENV: options.get("allocator", "tuned")}


def outlier_lines(rows: list[dict], limit: int = 10) -> list[str]:
    """Cells `analysis.outliers` flags, each with why: `best` will leave them out of its claims."""
    import pandas as pd

    from sdbench.analysis.outliers import flag_outliers

    if not rows:
        return []
    flagged = flag_outliers(pd.DataFrame(rows))
    flagged = flagged[flagged["outlier_reason"].notna()]
    lines = [
        f"{Cell.from_dict(row.to_dict()).label()}: {row['outlier_reason']}"
        for _, row in flagged.head(limit).iterrows()
    ]
    if len(flagged) > limit:
        lines.append(f"... and {len(flagged) - limit} more (sdbench report lists them)")
    return lines


SUMMARY_TABLE_ROWS = 30  # a bigger run's table would scroll away and take minutes to lay out
OUTLIER_SCAN_ROWS = 2_000  # the outlier scan compares a series' cells pairwise


def print_summary(outcome: RunOutcome, console: Console | None = None) -> None:
    """The end-of-run summary, bounded for any run size: a table of at most SUMMARY_TABLE_ROWS
    cells (those not ok first), warnings, outliers and counts. An interrupted run prints
    nothing here: `run_suite` already said how to resume, and the process should end at once."""
    if outcome.interrupted:
        return
    # A terminal's own width; a log's is the 100 columns every verb's output fits (export.table).
    console = console or Console(width=None if sys.stdout.isatty() else WIDTH)
    rows = outcome.rows
    shown = summary_rows(rows, SUMMARY_TABLE_ROWS)
    table = format_grouped(*run_cells_table(shown), column=0)
    console.print(table, markup=False, highlight=False, soft_wrap=True)
    if len(shown) < len(rows):
        where = f" {shlex.quote(str(outcome.path))}" if outcome.path else ""
        console.print(
            f"{len(shown)} of {len(rows)} cells shown (those not ok first); `sdbench show{where}` "
            "lists every cell, `sdbench report` makes the HTML report.",
            highlight=False,
            markup=False,
        )
    for line in warning_lines(rows):
        console.print(f"[yellow]warning[/] {line}", highlight=False)
    if len(rows) <= OUTLIER_SCAN_ROWS:
        for line in outlier_lines(rows):
            console.print(f"[yellow]outlier[/] {line}", highlight=False)
    else:
        console.print(
            f"outliers: not checked here for {len(rows)} cells; `sdbench best` leaves them out "
            "and `sdbench report` lists them.",
            highlight=False,
        )
    counts = outcome.status_counts
    not_ok = sum(v for k, v in counts.items() if k != "ok")
    text = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    console.print(
        f"{len(rows)} cells: {text}" + (f" ({not_ok} did not finish ok)" if not_ok else "")
    )
    if outcome.path:
        console.print(f"results: {outcome.path}", highlight=False, markup=False)
    sys.stdout.flush()
