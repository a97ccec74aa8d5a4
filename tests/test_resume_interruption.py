"""Ctrl-C, SIGTERM and a full disk: finished cells stay in the journal and the run can resume."""

from __future__ import annotations

import errno
import os
import signal
import uuid

import pyarrow.parquet as pq
import pytest
from rich.console import Console
from test_resume import start_run, wait_for_rows, wait_until_gone

from sdbench.errors import SdbenchError
from sdbench.runner import run as run_module
from sdbench.runner.run import run_suite
from sdbench.store.journal import read_journal


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupting_a_run_keeps_finished_cells_and_says_how_to_resume(
    signum, tiny_suite, tmp_path, processes_with_env
):
    suite = tiny_suite(matrix={"resolution": [64, 72, 80]})
    out, tag = tmp_path / "results", uuid.uuid4().hex
    process = start_run(suite, out, tag, faults={"72x72": "hang"})  # holds the run at 1 cell
    wait_for_rows(process, out, 1)
    process.send_signal(signum)  # Ctrl-C reaches the manager only: workers have their own session
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    (journal,) = out.glob(".*.journal.jsonl")
    run_id = journal.name.removeprefix(".").removesuffix(".journal.jsonl")
    assert "Interrupted. 1 of 3 cells are saved in the journal" in " ".join(stderr.split())
    assert f"Continue with: sdbench run --resume {run_id} --out {out}" in " ".join(stderr.split())
    assert "Traceback" not in stderr
    assert list(out.glob("*.parquet")) == []  # no partial results file
    assert [row["width"] for row in read_journal(journal)[1]] == [64]
    assert wait_until_gone(processes_with_env, tag, timeout_s=5) == []  # hung worker killed


def _fail_journal_write_number(monkeypatch, failing: int) -> None:
    """The `failing`-th write to a journal (1 = header) hits a full disk halfway through."""
    real_write, calls = os.write, [0]

    def write(fd: int, data) -> int:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".journal.jsonl"):
            calls[0] += 1
            if calls[0] == failing:
                real_write(fd, bytes(data[: len(data) // 2]))
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)


def test_a_full_disk_stops_the_run_with_the_journal_intact_and_resumable(
    tiny_suite, tmp_path, monkeypatch
):
    suite = tiny_suite(matrix={"resolution": [64, 72, 80]})
    out, quiet = tmp_path / "results", Console(quiet=True)
    _fail_journal_write_number(monkeypatch, failing=3)  # header, first row, then the disk fills
    with pytest.raises(SdbenchError) as failure:
        run_suite(str(suite), out, console=quiet)
    monkeypatch.undo()
    message = " ".join(str(failure.value).split())
    (journal,) = out.glob(".*.journal.jsonl")
    run_id = journal.name.removeprefix(".").removesuffix(".journal.jsonl")
    assert "No space left on device" in message
    assert "The 1 cells finished before this are safe in the journal" in message
    assert f"continue with: sdbench run --resume {run_id} --out {out}" in message
    assert journal.read_bytes().endswith(b"\n")  # the half-written line was rolled back
    assert [row["width"] for row in read_journal(journal)[1]] == [64]
    assert list(out.glob("*.parquet")) == []

    # The results file cannot be written either: every row stays in the journal.
    def no_space(rows, path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(run_module, "write_run", no_space)
    with pytest.raises(SdbenchError, match="Could not write the results file") as failure:
        run_suite(None, out, resume=run_id, console=quiet)
    assert "The 3 cells finished before this are safe" in " ".join(str(failure.value).split())
    monkeypatch.undo()
    assert len(read_journal(journal)[1]) == 3

    outcome = run_suite(None, out, resume=run_id, console=quiet)  # space freed: finishes
    rows = pq.read_table(outcome.path).to_pylist()
    assert [row["width"] for row in rows] == [64, 72, 80]
    assert not journal.exists()


def test_a_signal_inside_the_wait_loop_is_raised_where_the_loop_checks_not_where_it_lands():
    from sdbench.runner import interrupt

    with interrupt.signals_end_the_run():
        with interrupt.deferred():
            os.kill(os.getpid(), signal.SIGTERM)  # lands here: only noted
            landed_quietly = True
            with pytest.raises(KeyboardInterrupt):
                interrupt.check()
            interrupt.check()  # once raised, the request is spent
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # outside the loop: raised at once, as ever
    assert landed_quietly
    assert signal.getsignal(signal.SIGTERM) is not interrupt._on_signal  # handlers restored
