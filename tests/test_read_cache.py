"""The read cache: a folder read again answers from it, and never with rows a file no longer holds."""

from __future__ import annotations

import os
import time

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from run_rows import run_rows

from sdbench.store import read, read_cache
from sdbench.store.files import write_run
from sdbench.store.read import read_results

RUNS = read_cache.MIN_FILES  # the fewest files a cache is kept for


@pytest.fixture
def fleet(tmp_path, monkeypatch):
    """RUNS run files in host folders, written an hour ago, and a private cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("SDBENCH_READ_CACHE", raising=False)
    results = tmp_path / "results"
    for index in range(RUNS):
        _an_hour_ago(
            write_run(run_rows(f"run-{index:02d}", f"node{index % 4}"), _path(results, index))
        )
    return results


def _an_hour_ago(file):
    """Files modified within two seconds of a read are, by design, not cached: age them."""
    then = time.time_ns() - 3600 * 10**9
    os.utime(file, ns=(then, then))


def _path(results, index: int):
    return results / f"node{index % 4}" / f"run-{index:02d}.parquet"


def _uncached(results, monkeypatch) -> pd.DataFrame:
    with monkeypatch.context() as patch:
        patch.setenv("SDBENCH_READ_CACHE", "off")
        return read_results([results])


def _count_file_reads(monkeypatch) -> list:
    opened = []
    real = read._read_file
    monkeypatch.setattr(read, "_read_file", lambda file, columns: opened.append(file) or real(file, columns))  # fmt: skip
    return opened


def test_a_folder_read_again_comes_from_the_cache_without_opening_a_run_file(fleet, monkeypatch):
    first = read_results([fleet])
    opened = _count_file_reads(monkeypatch)
    again = read_results([fleet])
    assert opened == []
    pd.testing.assert_frame_equal(again, first)
    assert len(again) == 3 * RUNS
    pd.testing.assert_frame_equal(again, _uncached(fleet, monkeypatch))


def test_a_run_added_since_is_the_only_file_read_and_lands_in_file_order(fleet, monkeypatch):
    read_results([fleet])
    # sorts between node1's runs, and brings a column no other file has
    added = fleet / "node1" / "run-05b.parquet"
    _an_hour_ago(write_run(run_rows("run-05b", "node1", median=50.0, probe_note="warm"), added))
    opened = _count_file_reads(monkeypatch)
    frame = read_results([fleet])
    assert opened == [added]
    expected = _uncached(fleet, monkeypatch)
    pd.testing.assert_frame_equal(frame, expected)
    assert frame["probe_note"].notna().sum() == 3
    # and the cache now holds it: a third read opens nothing
    opened.clear()
    pd.testing.assert_frame_equal(read_results([fleet]), expected)
    assert opened == []


def test_a_rewritten_or_removed_run_file_is_read_from_disk_not_the_cache(fleet, monkeypatch):
    read_results([fleet])
    in_place = _path(fleet, 3)  # rewritten in place, its modification time put back
    stat = in_place.stat()
    table = pq.read_table(in_place)
    pq.write_table(table.set_column(table.column_names.index("suite"), "suite",
                                    pa.array(["edited"] * table.num_rows)), in_place)  # fmt: skip
    os.utime(in_place, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    frame = read_results([fleet])
    assert set(frame.loc[frame["run_id"] == "run-03", "suite"]) == {"edited"}
    write_run(run_rows("run-05", "node1", median=99.0), _path(fleet, 5))  # replaced by a rename
    frame = read_results([fleet])
    assert frame.loc[frame["run_id"] == "run-05", "median_ms"].dropna().tolist() == [100.5, 101.5]
    _path(fleet, 7).unlink()
    frame = read_results([fleet])
    assert "run-07" not in set(frame["run_id"])
    pd.testing.assert_frame_equal(frame, _uncached(fleet, monkeypatch))


def test_a_file_written_moments_before_a_read_is_read_again_next_time(fleet, monkeypatch):
    read_results([fleet])
    fresh = _path(fleet, 4)
    write_run(run_rows("run-04", "node0", median=20.0), fresh)
    read_results([fleet])
    opened = _count_file_reads(monkeypatch)
    frame = read_results([fleet])
    assert opened == [fresh]  # not trusted from the cache: a same-size rewrite in the same tick
    assert frame.loc[frame["run_id"] == "run-04", "median_ms"].dropna().tolist() == [21.5, 22.5]


def test_copies_and_skipped_files_are_reported_on_cached_reads_too(fleet, monkeypatch, capsys):
    copy = fleet / "backup" / "run-02.parquet"
    copy.parent.mkdir()
    copy.write_bytes(_path(fleet, 2).read_bytes())
    (fleet / "node0" / "notes.parquet").write_bytes(b"not parquet")
    pq.write_table(pq.read_table(_path(fleet, 0)).drop_columns(["run_id"]), fleet / "other.parquet")
    with pytest.raises(Exception, match="not a readable sdbench results file"):
        read_results([fleet])  # a corrupt file is an error, cached or not
    (fleet / "node0" / "notes.parquet").unlink()
    _an_hour_ago(copy)
    _an_hour_ago(fleet / "other.parquet")
    first = read_results([fleet])
    first_warnings = capsys.readouterr().err
    opened = _count_file_reads(monkeypatch)
    again = read_results([fleet])
    assert opened == []
    assert capsys.readouterr().err == first_warnings
    assert "is a copy of" in first_warnings and "not an sdbench results file" in first_warnings
    assert len(again) == 3 * RUNS
    pd.testing.assert_frame_equal(again, first)


def test_a_corrupt_or_unwritable_cache_is_ignored(fleet, monkeypatch, tmp_path):
    expected = _uncached(fleet, monkeypatch)
    read_results([fleet])
    cache = read_cache.cache_file([fleet])
    cache.write_bytes(b"garbage")
    pd.testing.assert_frame_equal(read_results([fleet]), expected)
    assert cache.read_bytes() != b"garbage"  # rewritten whole
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))  # its "sdbench" folder cannot be made
    pd.testing.assert_frame_equal(read_results([fleet]), expected)


def test_no_cache_is_kept_when_turned_off_or_for_a_few_files(fleet, monkeypatch, tmp_path):
    monkeypatch.setenv("SDBENCH_READ_CACHE", "off")
    read_results([fleet])
    assert not read_cache.cache_file([fleet]).exists()
    monkeypatch.delenv("SDBENCH_READ_CACHE")
    few = [_path(fleet, index) for index in range(RUNS - 1)]
    assert len(read_results(few)) == 3 * (RUNS - 1)
    assert not read_cache.cache_file(few).exists()


def test_only_the_eight_most_recently_used_path_sets_are_kept(fleet, tmp_path):
    def read_and_wait(paths):
        read_results(paths)
        time.sleep(0.02)  # modification times tick coarsely

    others = [[fleet, tmp_path / f"empty{index}"] for index in range(read_cache.KEPT_PATH_SETS)]
    for paths in others:
        paths[1].mkdir()
    read_and_wait([fleet])
    for paths in others[:-1]:
        read_and_wait(paths)
    read_and_wait([fleet])  # used again: now the most recent
    read_and_wait(others[-1])
    kept = sorted(read_cache.cache_file(paths) for paths in [[fleet], *others[1:]])
    assert sorted(read_cache.cache_file([fleet]).parent.glob("*.arrow")) == kept
    assert not read_cache.cache_file(others[0]).exists()
