"""compare's Mann-Whitney p-values are scipy.stats.mannwhitneyu's, computed without scipy.stats."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from sdbench.analysis.compare import mann_whitney_p_values
from sdbench.analysis.ranktest import _binom, mann_whitney_u_p_values

# Few distinct values give ties; many give none (the exact method for small samples).
COARSE = st.sampled_from([1.0, 2.0, 2.5, 3.0, 10.0])
FINE = st.floats(0.5, 500.0, allow_nan=False, allow_infinity=False)


@st.composite
def sample_pairs(draw):
    values = draw(st.sampled_from([COARSE, FINE]))
    x = draw(st.lists(values, min_size=1, max_size=40))
    kind = draw(st.sampled_from(["independent", "identical", "all equal"]))
    if kind == "identical":
        return x, list(x)
    if kind == "all equal":
        return [x[0]] * len(x), [x[0]] * draw(st.integers(1, 40))
    return x, draw(st.lists(values, min_size=1, max_size=40))


def scipy_p(x, y) -> float:
    return float(scipy_stats.mannwhitneyu(x, y, alternative="two-sided").pvalue)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sample_pairs())
def test_p_value_is_scipys_mannwhitneyu_on_random_samples_with_ties(pair):
    x, y = pair
    ours = float(mann_whitney_u_p_values(np.array([x]), np.array([y]))[0])
    assert ours == pytest.approx(scipy_p(x, y), rel=1e-12, abs=0)


def scipy_reference(base: np.ndarray, cur: np.ndarray) -> list[float]:
    """compare's code before it dropped scipy: one call along an axis, or one call per pair."""
    if min(base.shape[1], cur.shape[1]) > 8:
        tested = scipy_stats.mannwhitneyu(cur, base, alternative="two-sided", axis=1)
        return np.atleast_1d(tested.pvalue).tolist()
    return [scipy_p(c, b) for b, c in zip(base, cur, strict=True)]


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(1, 40),
    st.integers(1, 40),
    st.sampled_from([0.1, 1.0, 1e-6]),
    st.integers(0, 2**32 - 1),
)
def test_a_batch_of_cells_gets_the_p_values_of_scipys_calls(rows, n_base, n_cur, step, seed):
    rng = np.random.default_rng(seed)
    base = np.round(rng.lognormal(2.0, 0.1, (rows, n_base)) / step) * step  # coarse: ties
    cur = np.round(rng.lognormal(2.05, 0.1, (rows, n_cur)) / step) * step
    ours = mann_whitney_p_values(base, cur)
    assert ours == pytest.approx(scipy_reference(base, cur), rel=1e-12, abs=0)


def test_exact_method_on_a_tie_free_small_pair_matches_scipy_bit_for_bit():
    males, females = [19, 22, 16, 29, 24], [20, 11, 17, 12]  # scipy's documented example
    p = mann_whitney_u_p_values(np.array([males], float), np.array([females], float))
    assert p.tolist() == [scipy_p(males, females)]
    assert p[0] == pytest.approx(0.1111111111111111)


def test_all_equal_samples_give_p_value_one():
    assert mann_whitney_u_p_values(np.full((2, 12), 3.0), np.full((2, 20), 3.0)).tolist() == [
        1.0,
        1.0,
    ]


def test_binomial_coefficient_is_scipys_float_for_every_exact_size():
    from scipy import special

    pairs = [(n1 + n2, n1) for n1 in range(1, 9) for n2 in (*range(n1, 60), 999, 10**6)]
    assert [_binom(n, k) for n, k in pairs] == [float(special.binom(n, k)) for n, k in pairs]


def test_compare_p_values_do_not_import_scipy_stats():
    code = (
        "import sys, numpy as np\n"
        "from sdbench.analysis.compare import mann_whitney_p_values\n"
        "rng = np.random.default_rng(0)\n"
        "small = mann_whitney_p_values(rng.random((3, 5)), rng.random((3, 7)))\n"
        "large = mann_whitney_p_values(rng.random((3, 30)), rng.random((3, 20)))\n"
        "assert 0 < min(small + large) and max(small + large) <= 1\n"
        "print(sorted(m for m in sys.modules if m.startswith(('scipy.stats', 'scipy.special'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
