"""Runs sharing a results folder: each writes its own complete file; readers never see a partial one."""

from __future__ import annotations

import errno
import os
import threading
import uuid

import pyarrow.parquet as pq
import pytest
from test_resume import start_run

from sdbench import atomic
from sdbench.errors import BadInput
from sdbench.store.files import write_run
from sdbench.store.read import read_results

ROWS_PER_RUN = 40


def _rows(run_id: str, count: int = ROWS_PER_RUN) -> list[dict]:
    return [
        {
            "schema_version": 1,
            "run_id": run_id,
            "cell_id": f"{run_id}-{index}",
            "suite": "s",
            "started_at": "2026-11-25T10:00:00+00:00",
            "status": "ok",
            "samples_ms": [float(index)] * 200,
            "median_ms": float(index),
        }
        for index in range(count)
    ]


def test_two_runs_into_one_folder_at_once_give_two_complete_files(tiny_suite, tmp_path):
    out = tmp_path / "shared"
    first = start_run(tiny_suite("a.toml", matrix={"resolution": [64, 72]}), out, "a")
    second = start_run(tiny_suite("b.toml", matrix={"resolution": [80, 88, 96]}), out, "b")
    for process in (first, second):
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
    runs = sorted(out.glob("*.parquet"))
    assert len(runs) == 2
    widths = sorted(sorted(r["width"] for r in pq.read_table(run).to_pylist()) for run in runs)
    assert widths == [[64, 72], [80, 88, 96]]
    frame = read_results([out])
    assert len(frame) == 5 and frame["cell_id"].is_unique and set(frame["status"]) == {"ok"}
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in runs)


def test_a_reader_polling_a_folder_never_sees_a_partial_file(tmp_path):
    finished = threading.Event()
    errors: list[BaseException] = []

    def write_many() -> None:
        try:
            for index in range(25):
                write_run(_rows(f"run{index}"), tmp_path / f"run{index}.parquet")
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)
        finally:
            finished.set()

    writer = threading.Thread(target=write_many)
    writer.start()
    reads = 0
    while not finished.is_set():
        if not list(tmp_path.glob("*.parquet")):
            continue
        frame = read_results([tmp_path])
        counts = frame.groupby("run_id").size()
        assert (counts == ROWS_PER_RUN).all(), counts  # whole files only
        reads += 1
    writer.join()
    assert errors == []
    assert reads > 0
    assert len(read_results([tmp_path])) == 25 * ROWS_PER_RUN


def test_a_failed_write_leaves_no_temporary_file_and_the_old_file_untouched(tmp_path, monkeypatch):
    path = write_run(_rows("old", 3), tmp_path / "run.parquet")
    before = path.read_bytes()

    real_write = os.write

    def disk_full(fd, data):  # half a file reaches the disk, then it is full
        real_write(fd, bytes(data[:16]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patch, pytest.raises(OSError, match="No space left"):
        patch.setattr(atomic.os, "write", disk_full)  # the writer every file goes through
        write_run(_rows("new", 3), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.parquet"]


def test_results_files_are_readable_by_others_under_the_usual_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        path = write_run(_rows("r", 1), tmp_path / "r.parquet")
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o644


def test_hidden_and_underscore_files_in_a_folder_are_not_read(tmp_path):
    write_run(_rows("visible", 2), tmp_path / "visible.parquet")
    (tmp_path / ".partial.parquet").write_bytes(b"PAR1 torn")
    (tmp_path / "_scratch").mkdir()
    (tmp_path / "_scratch" / "x.parquet").write_bytes(b"not parquet")
    assert set(read_results([tmp_path])["run_id"]) == {"visible"}


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_damaged_results_file_is_named_in_a_clear_error(tmp_path, damage):
    path = write_run(_rows("r", 5), tmp_path / f"{uuid.uuid4().hex[:6]}.parquet")
    data = path.read_bytes()
    damaged = {"truncated": data[: len(data) // 2], "garbage": os.urandom(len(data)), "empty": b""}
    path.write_bytes(damaged[damage])
    with pytest.raises(BadInput) as failure:
        read_results([tmp_path])
    message = str(failure.value)
    assert f'"{path}" is not a readable sdbench results file' in message
    assert "remove it or re-run the suite that made it" in message
