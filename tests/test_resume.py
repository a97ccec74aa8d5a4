"""A killed run (kill -9 of the manager included) continues from its journal with --resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from rich.console import Console

from sdbench.errors import BadInput
from sdbench.runner.run import run_suite
from sdbench.store.journal import Journal, journal_path, read_journal

TAG = "SDBENCH_TEST_TAG"
REPO = Path(__file__).resolve().parent.parent


def _journal_rows(folder: Path) -> int:
    journals = list(folder.glob(".*.journal.jsonl"))
    if not journals:
        return 0
    return sum(line.startswith(b'{"row"') for line in journals[0].read_bytes().splitlines())


def start_run(suite: Path, out: Path, tag: str, faults: dict | None = None) -> subprocess.Popen:
    """`sdbench run` in its own process group, its workers findable by their environment tag."""
    inject = {"SDBENCH_INJECT": json.dumps(faults)} if faults else {}
    return subprocess.Popen(
        [sys.executable, "-m", "sdbench", "run", str(suite), "--out", str(out)],
        cwd=REPO,
        env={**os.environ, TAG: tag, **inject},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for_rows(process: subprocess.Popen, out: Path, count: int, timeout_s: float = 400):
    deadline = time.monotonic() + timeout_s
    while _journal_rows(out) < count:
        assert process.poll() is None, f"run ended early: {process.communicate()}"
        assert time.monotonic() < deadline, "the run did not reach the expected rows in time"
        time.sleep(0.2)


def wait_until_gone(find, tag: str, timeout_s: float = 15.0) -> list[int]:
    """Processes still tagged `tag` after up to timeout_s (the worker's watchdog polls each 1 s)."""
    deadline = time.monotonic() + timeout_s
    while find(TAG, tag) and time.monotonic() < deadline:
        time.sleep(0.2)
    return find(TAG, tag)


# Not `serial`: the hung cell, not a clock, decides where each run stops, and the kernel ends an
# orphaned worker at once (PR_SET_PDEATHSIG), so a busy CPU beside these tests changes nothing.
def test_kill_9_of_the_manager_then_resume_finishes_every_cell_exactly_once(
    tiny_suite, tmp_path, run_cli_in_process, processes_with_env
):
    suite = tiny_suite(matrix={"resolution": [64, 72, 80, 88, 96]})
    out, tag = tmp_path / "results", uuid.uuid4().hex
    # The third cell hangs in its worker: only dying with the manager can end that worker, and
    # the run waits there with exactly two cells done, however fast the cells measure.
    process = start_run(suite, out, tag, faults={"80x80": "hang"})
    wait_for_rows(process, out, 2)
    assert len(processes_with_env(TAG, tag)) >= 2  # the manager and its worker
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
    assert wait_until_gone(processes_with_env, tag, timeout_s=5) == []
    (journal,) = out.glob(".*.journal.jsonl")
    header, before = read_journal(journal)
    assert [row["width"] for row in before] == [64, 72]
    with open(journal, "ab") as handle:  # the line being written when the power went out
        handle.write(b'{"row": {"cell_id": "half-writ')

    code, _, stderr = run_cli_in_process("run", "--resume", journal)  # folder from the path
    assert code == 0, stderr
    assert f"{5 - len(before)} cells to measure, {len(before)} already done" in stderr
    (result,) = out.glob("*.parquet")
    rows = pq.read_table(result).to_pylist()
    assert sorted(r["cell_id"] for r in rows) == sorted(c["cell_id"] for c in _ids(header))
    assert [r["width"] for r in rows] == [64, 72, 80, 88, 96]  # in the suite's order
    for done in before:  # rows measured before the kill were kept, not measured again
        (kept,) = [r for r in rows if r["cell_id"] == done["cell_id"]]
        assert kept["samples_ms"] == done["samples_ms"]
    assert {r["run_id"] for r in rows} == {header["run_id"]}
    assert sorted(p.name for p in out.iterdir()) == [result.name]  # journal and temp files gone


def _ids(header: dict) -> list[dict]:
    from sdbench.cell import Cell

    return [{"cell_id": Cell.from_dict(c).cell_id} for c in header["cells"]]


def test_resuming_a_finished_run_or_an_unknown_one_is_a_clear_error(tmp_path):
    (tmp_path / "run-a.parquet").write_bytes(b"complete")
    with pytest.raises(BadInput, match="already complete; there is nothing to resume"):
        run_suite(None, tmp_path, resume="run-a", console=Console(quiet=True))
    with pytest.raises(BadInput, match='No journal for run "run-b"'):
        run_suite(None, tmp_path, resume="run-b", console=Console(quiet=True))


def _journal(tmp_path: Path, rows: int) -> Journal:
    journal = Journal(journal_path(tmp_path, "run"))
    journal.write_header({"run_id": "run"})
    for index in range(rows):
        journal.append_row({"cell_id": f"c{index}", "median_ms": float(index)})
    return journal


def test_a_half_written_last_line_is_ignored_and_cut_before_appending(tmp_path):
    journal = _journal(tmp_path, 2)
    with open(journal.path, "ab") as handle:
        handle.write(b'{"row": {"cell_id": "c2", "med')
    header, rows = read_journal(journal.path)
    assert header == {"run_id": "run"} and [r["cell_id"] for r in rows] == ["c0", "c1"]
    assert journal.repair() == len(b'{"row": {"cell_id": "c2", "med')
    journal.append_row({"cell_id": "c2", "median_ms": 2.0})
    assert [r["cell_id"] for r in read_journal(journal.path)[1]] == ["c0", "c1", "c2"]
    assert journal.repair() == 0


def test_the_last_row_for_a_cell_wins_so_rows_are_never_duplicated(tmp_path):
    journal = _journal(tmp_path, 2)
    journal.append_row({"cell_id": "c0", "median_ms": 9.0})
    rows = read_journal(journal.path)[1]
    assert sorted((r["cell_id"], r["median_ms"]) for r in rows) == [("c0", 9.0), ("c1", 1.0)]


def test_a_failed_write_leaves_the_journal_as_it_was(tmp_path, monkeypatch):
    journal = _journal(tmp_path, 1)
    before = journal.path.read_bytes()
    real_write = os.write

    def disk_fills_halfway(fd: int, data) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", disk_fills_halfway)
    with pytest.raises(OSError, match="No space left"):
        journal.append_row({"cell_id": "c1", "median_ms": 1.0})
    monkeypatch.undo()
    assert journal.path.read_bytes() == before
    assert len(read_journal(journal.path)[1]) == 1


def test_a_journal_in_use_cannot_be_resumed_by_a_second_process(tmp_path):
    journal = _journal(tmp_path, 1)
    with journal.locked(), pytest.raises(BadInput, match="Another sdbench process"):  # noqa: SIM117
        with Journal(journal.path).locked():
            pass
    with journal.locked():  # released: usable again
        pass


def test_a_run_never_reuses_an_existing_journal(tmp_path):
    journal = _journal(tmp_path, 0)
    with pytest.raises(FileExistsError):
        journal.write_header({"run_id": "run"})
    assert json.loads(journal.path.read_text()) == {"header": {"run_id": "run"}}
