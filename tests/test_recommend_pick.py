"""recommend's pick per tier and criterion: the row a stable sort on (criterion, s_per_image) puts
first, found by a scan instead of sorting the candidate table."""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from sdbench.analysis.recommend import _pick

figures = st.one_of(st.none(), st.sampled_from([0.5, 1.0, 2.0]))


def _sorted_first(pool: pd.DataFrame, column: str) -> pd.Series | None:
    keys = list(dict.fromkeys([column, "s_per_image"]))
    ranked = pool.dropna(subset=[column]).sort_values(keys, kind="stable")
    return None if ranked.empty else ranked.iloc[0]


# No deadline: a first example's pandas warm-up passed 200 ms on a busy 2-core machine.
@settings(deadline=None)
@given(st.lists(st.tuples(figures, figures), max_size=8))
def test_pick_is_the_first_row_of_a_stable_sort_with_missing_figures_last(pairs):
    pool = pd.DataFrame(
        {
            "gpu": [f"gpu{i}" for i in range(len(pairs))],
            "cost": [cost for cost, _ in pairs],
            "s_per_image": [speed for _, speed in pairs],
        }
    )
    for column in ("cost", "s_per_image"):
        picked, expected = _pick(pool, column), _sorted_first(pool, column)
        assert (picked is None) == (expected is None)
        if expected is not None:
            assert picked["gpu"] == expected["gpu"]


def test_pick_breaks_a_tie_on_the_faster_card_then_on_the_first():
    pool = pd.DataFrame(
        {"gpu": ["a", "b", "c", "d"], "cost": [2.0, 1.0, 1.0, 1.0], "s_per_image": [1, 3, 2, 2]}
    )
    assert _pick(pool, "cost")["gpu"] == "c"
    assert _pick(pool.assign(cost=[None] * 4), "cost") is None
