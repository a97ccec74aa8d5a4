"""The results reader: nested host folders, extra columns, chosen columns, unreadable files."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from run_rows import run_rows

from sdbench.errors import BadInput
from sdbench.runner.run import new_run_id
from sdbench.store.files import write_run
from sdbench.store.read import read_results, read_results_table
from sdbench.store.schema import COLUMNS


def test_reads_nested_host_folders_and_files_that_differ_in_extra_columns(tmp_path):
    results = tmp_path / "results"
    write_run(run_rows("run-a", "node1"), results / "node1" / "run-a.parquet")
    # A newer run with an extra column, and one where that column was null in every row.
    write_run(run_rows("run-b", "node2", probe_note="warm"), results / "node2" / "run-b.parquet")
    write_run(
        run_rows("run-c", "node2", probe_note=None), results / "node2" / "deep" / "run-c.parquet"
    )
    (results / "node1" / ".run-d.1234.tmp.parquet").write_bytes(b"being written")
    (results / "_cache").mkdir()
    (results / "_cache" / "x.parquet").write_bytes(b"not a run")

    fast = read_results([results])
    # An extra column that some files lack comes back as a string column (missing = NaN).
    notes = fast.groupby("run_id")["probe_note"].apply(lambda n: n.notna().sum()).to_dict()
    assert notes == {"run-a": 0, "run-b": 3, "run-c": 0}
    assert fast["probe_note"].dtype != object
    assert fast["probe_note"].dropna().tolist() == ["warm"] * 3
    assert len(fast) == 9 and set(COLUMNS) <= set(fast.columns)
    assert sorted(fast["run_id"].unique()) == ["run-a", "run-b", "run-c"]
    assert list(fast.loc[fast["run_id"] == "run-a", "samples_ms"].iloc[1]) == [11.0, 12.0]


def test_reads_only_the_columns_asked_for_and_ignores_unknown_ones(tmp_path):
    write_run(run_rows("run-a", "node1"), tmp_path / "run-a.parquet")
    table = read_results_table([tmp_path], columns=["run_id", "median_ms", "no_such_column"])
    assert table.column_names == ["run_id", "median_ms"]
    assert table.column("median_ms").to_pylist() == [None, 11.5, 12.5]


def test_a_corrupt_file_is_named_in_a_user_error(tmp_path):
    write_run(run_rows("run-a", "node1"), tmp_path / "run-a.parquet")
    (tmp_path / "run-b.parquet").write_bytes(b"PAR1 torn")
    with pytest.raises(BadInput, match=r'run-b\.parquet" is not a readable sdbench results file'):
        read_results([tmp_path])


def test_an_empty_folder_says_how_to_make_results(tmp_path):
    with pytest.raises(BadInput, match="Run `sdbench run SUITE` first"):
        read_results([tmp_path])


def test_many_hosts_writing_into_one_shared_folder_at_once_lose_nothing(tmp_path):
    results = tmp_path / "shared"

    def write(index: int) -> str:
        run_id, host = new_run_id("fleet"), f"node{index % 4}"
        write_run(run_rows(run_id, host, cells=5), results / host / f"{run_id}.parquet")
        return run_id

    with ThreadPoolExecutor(max_workers=8) as pool:
        run_ids = list(pool.map(write, range(32)))
    assert len(set(run_ids)) == 32  # ids are unique without any coordination
    frame = read_results([results])
    assert len(frame) == 32 * 5
    assert sorted(frame["run_id"].unique()) == sorted(run_ids)
    assert sorted(p.name for p in results.iterdir()) == ["node0", "node1", "node2", "node3"]


def test_a_run_file_copied_into_two_folders_is_counted_once_with_a_warning(tmp_path, capsys):
    results = tmp_path / "results"
    original = write_run(run_rows("run-a", "node1"), results / "node1" / "run-a.parquet")
    copy = results / "backup" / "run-a.parquet"
    copy.parent.mkdir()
    copy.write_bytes(original.read_bytes())
    write_run(run_rows("run-b", "node2"), results / "node2" / "run-b.parquet")

    frame = read_results([results])
    assert len(frame) == 6
    assert frame.groupby("run_id").size().to_dict() == {"run-a": 3, "run-b": 3}
    warnings = [line for line in capsys.readouterr().err.splitlines() if "run-a" in line]
    assert len(warnings) == 1
    assert str(original) in warnings[0] and str(copy) in warnings[0]
    assert "counted once" in warnings[0]


def test_the_same_file_named_twice_is_read_once_without_a_warning(tmp_path, capsys):
    path = write_run(run_rows("run-a", "node1"), tmp_path / "run-a.parquet")
    assert len(read_results([tmp_path, path])) == 3
    assert capsys.readouterr().err == ""


def test_a_copy_taken_before_a_run_finished_is_counted_once_from_the_whole_run(tmp_path, capsys):
    whole = write_run(run_rows("run-a", "node1", cells=5), tmp_path / "b" / "run-a.parquet")
    part = write_run(run_rows("run-a", "node1", cells=2), tmp_path / "a" / "run-a.parquet")
    frame = read_results([tmp_path])
    assert sorted(frame["cell_id"]) == [f"cell-{index}" for index in range(5)]
    warning = capsys.readouterr().err
    assert f'"{part}" holds 2 of the 5 cells' in warning and str(whole) in warning


def test_two_files_sharing_a_run_id_but_not_their_rows_are_both_kept_with_a_warning(
    tmp_path, capsys
):
    # An edited copy (another host) that kept the run id: its rows are another machine's.
    first = write_run(run_rows("run-a", "node1"), tmp_path / "run-a.parquet")
    edited = write_run(run_rows("run-a", "node9"), tmp_path / "edited" / "run-a.parquet")
    frame = read_results([tmp_path])
    assert len(frame) == 6 and frame["machine_id"].nunique() == 2
    warning = capsys.readouterr().err
    assert str(first) in warning and str(edited) in warning
    assert "differ in host" in warning and "give the edited copy its own run_id" in warning


def test_a_copied_run_is_counted_once_when_only_some_columns_are_read(tmp_path, capsys):
    original = write_run(run_rows("run-a", "node1"), tmp_path / "a" / "run-a.parquet")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "run-a.parquet").write_bytes(original.read_bytes())
    table = read_results_table([tmp_path], columns=["median_ms"])
    assert table.column_names == ["median_ms"] and table.num_rows == 3


def test_a_file_lacking_many_core_columns_gains_them_as_nulls_in_one_step(tmp_path):
    import warnings

    import pyarrow as pa
    import pyarrow.parquet as pq

    # An older writer's file: only a handful of the current columns.
    old = {"schema_version": [1, 1], "run_id": ["old", "old"], "cell_id": ["c1", "c2"]}
    pq.write_table(pa.table({**old, "status": ["ok", "oom"]}), tmp_path / "old.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pandas' PerformanceWarning for a column at a time
        frame = read_results([tmp_path])
    assert set(COLUMNS) <= set(frame.columns)
    assert frame["energy_j"].tolist() == [None, None]
    assert frame["memory"].tolist() == ["none", "none"]


def test_a_run_file_has_no_dictionary_pages(tmp_path):
    import pyarrow.parquet as pq

    path = write_run(run_rows("run-a", "node1"), tmp_path / "run-a.parquet")
    row_group = pq.ParquetFile(path).metadata.row_group(0)
    encodings = {row_group.column(i).encodings for i in range(row_group.num_columns)}
    assert not any("RLE_DICTIONARY" in e or "PLAIN_DICTIONARY" in e for e in encodings)
    assert read_results([path])["host"].tolist() == ["node1"] * 3
