"""The allocator setting: a suite option, applied by the worker, recorded on every row, compared."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sdbench.analysis.compare import compare_runs
from sdbench.cli import main
from sdbench.errors import BadInput
from sdbench.store import read_results, write_run
from sdbench.store.schema import COLUMNS
from sdbench.store.validate import row_problem
from sdbench.suite import load_suite
from tests.test_compare import make_run


def test_the_schema_has_an_allocator_text_column():
    assert COLUMNS["allocator"] == pa.string()


def test_a_suite_chooses_the_allocator_and_tuned_is_the_default(tiny_suite):
    assert load_suite(tiny_suite()).options["allocator"] == "tuned"
    chosen = load_suite(tiny_suite(options={"allocator": "default"}))
    assert chosen.options["allocator"] == "default"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("tunde", 'Did you mean "tuned"?'), ("jemalloc", "Allowed: tuned, default."), (1, "1")],
)
def test_an_unknown_allocator_is_refused_naming_the_key_and_choices(tiny_suite, value, expected):
    with pytest.raises(BadInput) as raised:
        load_suite(tiny_suite(options={"allocator": value}))
    message = str(raised.value)
    assert "[options.allocator] unknown value" in message and expected in message


def test_a_row_with_an_unknown_allocator_cannot_be_stored():
    row = {"run_id": "r", "cell_id": "c", "status": "ok"}
    assert row_problem({**row, "allocator": "tuned"}) is None
    assert "allowed: tuned, default" in row_problem({**row, "allocator": "fast"})


def test_files_from_before_the_column_read_it_as_not_recorded(tmp_path):
    old = {"schema_version": 2, "run_id": "old", "cell_id": "c1", "status": "ok"}
    pq.write_table(pa.Table.from_pylist([old]), tmp_path / "old.parquet")
    frame = read_results([tmp_path])
    assert "allocator" in frame and frame["allocator"].isna().all()


def test_compare_warns_when_the_two_sides_ran_with_different_allocators():
    rng = np.random.default_rng(3)
    base, cur = make_run(rng, "a", allocator="tuned"), make_run(rng, "b", allocator="default")
    (warning,) = compare_runs(base, cur).environment_warnings
    assert warning.startswith("SETTING DIFFERS (allocator): baseline tuned vs current default")
    assert "[options] allocator" in warning
    same = compare_runs(base, make_run(rng, "c", allocator="tuned"))
    assert same.environment_warnings == []
    # An older baseline did not record it: unknown is not a difference.
    older = compare_runs(make_run(rng, "d", allocator=None), cur)
    assert older.environment_warnings == []


def test_compare_and_show_on_the_command_line_say_the_allocator(tmp_path, capsys):
    rng = np.random.default_rng(4)
    write_run(make_run(rng, "base", allocator="tuned").to_dict("records"), tmp_path / "b.parquet")
    write_run(make_run(rng, "cur", allocator="default").to_dict("records"), tmp_path / "c.parquet")
    main(["compare", str(tmp_path / "b.parquet"), str(tmp_path / "c.parquet")])
    assert "SETTING DIFFERS (allocator)" in capsys.readouterr().out
    assert main(["show", str(tmp_path / "c.parquet")]) == 0
    assert "allocator default (compare its CPU timings only" in capsys.readouterr().out


def test_the_worker_applies_the_suites_allocator_and_every_row_records_it(tiny_suite, tmp_path):
    from rich.console import Console

    from sdbench.runner.run import run_suite

    matrix = {"stage": ["unet"], "batch_size": [1], "precision": ["fp32"], "attention": ["sdpa"]}
    suite = tiny_suite(matrix=matrix, options={"allocator": "default"})
    outcome = run_suite(str(suite), tmp_path / "out", console=Console(quiet=True))
    rows = pq.read_table(outcome.path).to_pylist()
    assert [(r["status"], r["allocator"]) for r in rows] == [("ok", "default")]
