"""Statistics over timing samples: median, spread and the median's confidence interval."""

from __future__ import annotations

import numpy as np
import pytest

from sdbench.stats import EXACT_RANK_MAX_SAMPLES, median, median_ci95, median_ci_rank, summarize


def test_summarize_gives_the_textbook_figures():
    summary = summarize([10.0, 12.0, 11.0, 13.0, 14.0])
    assert summary.median_ms == 12.0
    assert summary.mean_ms == 12.0
    assert summary.std_ms == pytest.approx(np.std([10, 12, 11, 13, 14], ddof=1))
    assert summary.iqr_ms == pytest.approx(2.0)
    assert summary.samples_ms == (10.0, 12.0, 11.0, 13.0, 14.0)


def test_few_samples_get_the_range_as_interval():
    assert median_ci95([3.0, 1.0, 2.0]) == (1.0, 3.0)


def test_interval_brackets_the_median_and_narrows_with_more_samples():
    rng = np.random.default_rng(0)
    small = rng.normal(100, 5, 10)
    large = rng.normal(100, 5, 200)
    low_s, high_s = median_ci95(small)
    low_l, high_l = median_ci95(large)
    assert low_s <= np.median(small) <= high_s
    assert low_l <= np.median(large) <= high_l
    assert high_l - low_l < high_s - low_s


def test_interval_covers_the_true_median_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    trials, covered = 2000, 0
    for _ in range(trials):
        samples = rng.lognormal(mean=0.0, sigma=0.3, size=15)  # true median is exactly 1
        low, high = median_ci95(samples)
        covered += low <= 1.0 <= high
    assert 0.93 <= covered / trials <= 0.995


def test_the_median_of_an_even_count_is_the_mean_of_the_middle_two():
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5 == summarize([4.0, 1.0, 3.0, 2.0]).median_ms
    assert median(iter([7.0, 1.0, 3.0])) == 3.0  # any iterable


def test_no_samples_is_an_error():
    with pytest.raises(ValueError):
        summarize([])
    with pytest.raises(ValueError):
        median([])


def test_the_median_ci_rank_in_exact_integers_is_scipys_binomial_quantile():
    from scipy import stats as scipy_stats

    def scipy_rank(n: int) -> int:  # the rule as it was written with scipy
        k = int(scipy_stats.binom.ppf(0.025, n, 0.5))
        while k > 0 and scipy_stats.binom.cdf(k - 1, n, 0.5) > 0.025:
            k -= 1
        return max(k, 1)

    sizes = [*range(6, 200), *range(200, EXACT_RANK_MAX_SAMPLES + 1, 37), EXACT_RANK_MAX_SAMPLES]
    assert [median_ci_rank(n) for n in sizes] == [scipy_rank(n) for n in sizes]
    assert median_ci_rank(20) == 6  # [x_(6), x_(15)]: the textbook interval for n = 20
