"""The Parquet store: atomic run files, typed nulls, readers that skip hidden files."""

from __future__ import annotations

import pyarrow.parquet as pq

from sdbench.store import COLUMNS, read_results, write_run


def _row(**overrides):
    row = {
        "schema_version": 1,
        "run_id": "r1",
        "cell_id": "abc",
        "suite": "s",
        "started_at": "2026-11-25T10:00:00+00:00",
        "model": "tiny",
        "stage": "unet",
        "status": "ok",
        "samples_ms": [1.0, 2.0, 3.0],
        "median_ms": 2.0,
    }
    row.update(overrides)
    return row


def test_written_file_has_every_core_column_with_nulls_not_zeros(tmp_path):
    path = write_run(
        [_row(), _row(cell_id="def", status="oom", samples_ms=None, median_ms=None)],
        tmp_path / "r1.parquet",
    )
    table = pq.read_table(path)
    assert set(COLUMNS) <= set(table.column_names)
    frame = table.to_pandas()
    assert frame.loc[1, "status"] == "oom"
    assert frame["energy_j"].isna().all()  # not measured is null, never 0
    assert list(frame.loc[0, "samples_ms"]) == [1.0, 2.0, 3.0]
    assert not list(tmp_path.glob(".*"))  # the temporary file was renamed away


def test_extra_columns_are_kept(tmp_path):
    write_run([_row(my_extra=3.5)], tmp_path / "r.parquet")
    assert read_results([tmp_path])["my_extra"].tolist() == [3.5]


def test_readers_skip_hidden_and_underscore_files(tmp_path):
    write_run([_row()], tmp_path / "r1.parquet")
    write_run([_row(run_id="hidden")], tmp_path / ".partial.parquet")
    write_run([_row(run_id="private")], tmp_path / "_scratch.parquet")
    frame = read_results([tmp_path])
    assert frame["run_id"].tolist() == ["r1"]
