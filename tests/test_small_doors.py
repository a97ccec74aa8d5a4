"""Smaller doors: a suite without a matrix is a mistake, not a full-size default run."""

from __future__ import annotations

import pytest

from sdbench.errors import BadInput
from sdbench.suite import parse_suite


@pytest.mark.parametrize(
    "text",
    ['[suite]\nname = "x"\n', "[matrix]\n[measure]\nwarmup = 1\n", "", "[options]\ncfg = true\n"],
)
def test_a_suite_without_a_matrix_exits_2_naming_it(text):
    with pytest.raises(BadInput, match=r"s.toml: \[matrix\] is missing or empty"):
        parse_suite(text, source="s.toml")


def test_a_suite_with_a_matrix_of_one_axis_still_takes_defaults_for_the_rest():
    suite = parse_suite('[matrix]\nmodel = ["tiny"]\n', source="s.toml")
    assert suite.matrix["model"] == ("tiny",) and len(suite.matrix["stage"]) >= 1
