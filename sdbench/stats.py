"""Robust statistics over raw timing samples: median, spread and a confidence interval of the median.

Pure numpy/scipy; no torch. Every figure derives from the samples, which are always kept.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

# Fewest samples whose order statistics give a 95% CI of the median; below it the CI is the range.
CI_MIN_SAMPLES = 6


@dataclass(frozen=True)
class Summary:
    """What the samples of one cell say; every field derives from `samples_ms`."""

    samples_ms: tuple[float, ...]
    median_ms: float
    mean_ms: float
    std_ms: float
    iqr_ms: float
    ci95_low_ms: float
    ci95_high_ms: float

    @property
    def rel_ci_half_width(self) -> float:
        """Half the 95% CI width over the median: how precisely the median is known."""
        if self.median_ms <= 0:
            return math.inf
        return (self.ci95_high_ms - self.ci95_low_ms) / 2 / self.median_ms

    def as_columns(self) -> dict[str, object]:
        return {
            "samples_ms": list(self.samples_ms),
            "n_samples": len(self.samples_ms),
            "median_ms": self.median_ms,
            "mean_ms": self.mean_ms,
            "std_ms": self.std_ms,
            "iqr_ms": self.iqr_ms,
            "ci95_low_ms": self.ci95_low_ms,
            "ci95_high_ms": self.ci95_high_ms,
        }


def median_ci95(samples: Sequence[float]) -> tuple[float, float]:
    """Distribution-free 95% CI of the median from order statistics (binomial, Hodges-Lehmann style).

    With fewer than CI_MIN_SAMPLES no order-statistic interval reaches 95%; the range is returned,
    which is the honest widest interval the data supports.
    """
    ordered = np.sort(np.asarray(samples, dtype=float))
    n = len(ordered)
    if n == 0:
        raise ValueError("no samples")
    if n < CI_MIN_SAMPLES:
        return float(ordered[0]), float(ordered[-1])
    k = median_ci_rank(n)
    return float(ordered[k - 1]), float(ordered[n - k])


# Up to this many samples the rank is computed with exact integers (no scipy import, ~1 ms);
# above it, with scipy's binomial quantile, as exact integers grow with n. The two agreed on
# every n up to here when this was written; tests/test_stats.py rechecks a spread of them.
EXACT_RANK_MAX_SAMPLES = 2000


@functools.lru_cache(maxsize=256)
def median_ci_rank(n: int) -> int:
    """k of the median's 95% CI [x_(k), x_(n-k+1)] over n samples: the largest k with
    P(Binomial(n, 1/2) < k) <= 2.5%, and at least 1."""
    if n > EXACT_RANK_MAX_SAMPLES:
        from scipy import stats as scipy_stats  # here: it takes a second to import

        k = int(scipy_stats.binom.ppf(0.025, n, 0.5))
        while k > 0 and scipy_stats.binom.cdf(k - 1, n, 0.5) > 0.025:
            k -= 1
        return max(k, 1)
    # P(X <= j) = sum of C(n, i) for i <= j, over 2^n; never exactly 1/40, as 2^n has no factor 5.
    below, term, j = 0, 1, 0  # term = C(n, j)
    while 40 * (below + term) <= 2**n:
        below += term
        term = term * (n - j) // (j + 1)
        j += 1
    return max(j, 1)


def median(values: Iterable[float]) -> float:
    """The median: the middle value, or the mean of the middle two of an even count (never the
    upper one, `sorted(x)[n // 2]`). Summary's median and every other median in sdbench."""
    array = np.fromiter(values, dtype=float)
    if array.size == 0:
        raise ValueError("no values")
    return float(np.median(array))


def summarize(samples: Sequence[float]) -> Summary:
    """Median, mean, std, IQR and the median's 95% CI of timing samples in milliseconds."""
    values = np.asarray(samples, dtype=float)
    if values.size == 0:
        raise ValueError("no samples")
    q1, q3 = np.percentile(values, [25, 75])
    low, high = median_ci95(values)
    return Summary(
        samples_ms=tuple(float(v) for v in values),
        median_ms=median(values),
        mean_ms=float(values.mean()),
        std_ms=float(values.std(ddof=1)) if values.size > 1 else 0.0,
        iqr_ms=float(q3 - q1),
        ci95_low_ms=low,
        ci95_high_ms=high,
    )
