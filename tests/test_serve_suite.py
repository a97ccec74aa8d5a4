"""A suite's [serve] table: validated like the rest of the loader, expanded one cell per rate."""

from __future__ import annotations

import math

import pytest

from sdbench.cell import Cell
from sdbench.errors import BadInput
from sdbench.suite import expand, parse_suite

BASE = """
[matrix]
model = "tiny"
stage = ["serve", "unet"]
device = "cpu"
resolution = 64
batch_size = [1, 2]
"""


def suite_with(serve: str, base: str = BASE):
    return parse_suite(base + "\n[serve]\n" + serve, source="s.toml")


def test_each_rate_is_one_serve_cell_whose_batch_size_is_max_batch():
    suite = suite_with('rates = [0.5, 2, "auto"]\nduration_s = 30\nmax_batch = 3\nslo_p99_s = 4')
    cells = expand(suite, ["cpu"])
    serve = [c for c in cells if c.stage == "serve"]
    assert [(c.rate_rps, c.serve_mode) for c in serve] == [
        (0.5, "poisson"), (2.0, "poisson"), (None, "auto")
    ]  # fmt: skip
    assert {c.batch_size for c in serve} == {3}
    assert {(c.duration_s, c.max_wait_ms, c.slo_p99_s, c.serve_seed) for c in serve} == {
        (30.0, 50.0, 4.0, 1)
    }
    assert len({c.cell_id for c in serve}) == 3
    assert sorted(c.batch_size for c in cells if c.stage == "unet") == [1, 2]


def test_a_closed_loop_is_one_cell_with_its_clients():
    suite = suite_with("concurrency = 8\nrequests = 200\nslo_p99_s = 4")
    (cell,) = [c for c in expand(suite, ["cpu"]) if c.stage == "serve"]
    assert cell.serve_mode == "closed" and cell.concurrency == 8 and cell.requests == 200
    assert cell.duration_s is None and cell.rate_rps is None


def test_cells_without_serving_keep_the_ids_they_had_before_serving_existed():
    cell = Cell("tiny", "unet", "cpu", 64, 64, 1, "fp32", "sdpa", "none")
    assert cell.cell_id == "98248ab402f53bd0"  # as computed before the serve fields existed


def test_a_serve_row_read_back_with_nulls_as_nan_is_the_same_cell():
    suite = suite_with("concurrency = 8\nrequests = 200\nslo_p99_s = 4")
    cell = [c for c in expand(suite, ["cpu"]) if c.stage == "serve"][0]
    row = {**cell.to_dict(), "rate_rps": math.nan, "duration_s": math.nan, "concurrency": 8.0}
    assert Cell.from_dict(row).cell_id == cell.cell_id


@pytest.mark.parametrize(
    ("serve", "says"),
    [
        (
            "rates = [1]\nmax_batch = 0\nslo_p99_s = 4",
            "[serve.max_batch] must be an integer from 1",
        ),
        ("rates = [0]\nslo_p99_s = 4", "[serve.rates] 0 is not a rate"),
        ("rates = [-1.5]\nslo_p99_s = 4", "above zero"),
        ('rates = ["fast"]\nslo_p99_s = 4', '"auto"'),
        ("rates = []\nslo_p99_s = 4", "is empty"),
        ("rates = [1]\nconcurrency = 4\nslo_p99_s = 4", "not both"),
        ("slo_p99_s = 4", "not neither"),
        ("rates = [1]", "[serve.slo_p99_s] is missing"),
        ("rates = [1]\nslo_p99_s = 0", "[serve.slo_p99_s] must be a number"),
        ("rates = [1]\nslo_p99_s = 4\nduration_s = 10\nrequests = 5", "duration_s or requests"),
        ("rates = [1]\nslo_p99_s = 4\nmax_wait = 5", 'Did you mean "max_wait_ms"?'),
        ("rates = [1]\nslo_p99_s = 4\nconcurrency = 0", "concurrency"),
    ],
)
def test_bad_serve_settings_name_the_file_and_key(serve, says):
    with pytest.raises(BadInput) as error:
        suite_with(serve)
    assert str(error.value).startswith("s.toml: [serve")
    assert says in str(error.value)


def test_a_serve_table_needs_the_serve_stage_and_the_stage_needs_the_table():
    with pytest.raises(BadInput, match=r'\[serve\] has no "serve" stage'):
        suite_with("rates = [1]\nslo_p99_s = 4", base=BASE.replace('"serve", ', ""))
    with pytest.raises(BadInput, match=r'\[matrix.stage\] stage "serve" needs a \[serve\] table'):
        parse_suite(BASE, source="s.toml")


def test_the_shipped_serve_suite_is_valid():
    from sdbench.suite import load_suite

    suite = load_suite("serve-tiny")
    assert suite.serve is not None and "auto" in suite.serve.rates


def test_a_serve_cell_is_expected_to_take_its_calibration_plus_its_arrivals_span():
    from sdbench.cell import Measure
    from sdbench.runner.estimate import serve_seconds

    suite = suite_with('rates = [2, "auto"]\nduration_s = 30\nmax_batch = 2\nslo_p99_s = 4')
    poisson, auto = [c for c in expand(suite, ["cpu"]) if c.stage == "serve"]
    measure = Measure(warmup=1)
    # batch 2 call 1 s, batch 1 taken as 0.5 s; (1 warm-up + 3 timed) calls each
    assert serve_seconds(poisson, 1.0, measure) == pytest.approx(4 * 1.5 + 30)
    assert serve_seconds(auto, 1.0, measure) == pytest.approx(4 * 1.5 + 60)
