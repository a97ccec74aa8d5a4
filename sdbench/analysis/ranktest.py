"""Two-sided Mann-Whitney U p-values, as `scipy.stats.mannwhitneyu` gives them, without scipy.

Importing scipy.stats costs about a second, which `sdbench report` over a fleet cannot afford
(issue 15). This follows scipy 1.17's `_mannwhitneyu.py` with `method="auto"` and the default
continuity correction, step for step so that rounding agrees too: the exact null distribution
(Löffler's recurrence) when one side has 8 samples or fewer and no value is tied, else the
normal approximation with tie and continuity corrections. The normal tail uses `math.erfc`
where scipy uses its own, which differs by up to ~2e-13 relative far in the tail.
"""

from __future__ import annotations

import math

import numpy as np

EXACT_MAX_SIZE = 8  # scipy: exact unless both sides have more than this many samples


def mann_whitney_u_p_values(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """p-value of each row of `x` (k, n1) against the same row of `y` (k, n2), two-sided."""
    n1, n2 = x.shape[1], y.shape[1]
    ranks, tie_term, tied = _average_ranks(np.concatenate([x, y], axis=1).astype(float))
    u1 = ranks[:, :n1].sum(axis=1) - n1 * (n1 + 1) / 2
    u = np.maximum(u1, n1 * n2 - u1)
    exact = ~tied if min(n1, n2) <= EXACT_MAX_SIZE else np.zeros(len(u), dtype=bool)
    p = np.empty(len(u))
    p[~exact] = _normal_sf(_z(u[~exact], n1, n2, tie_term[~exact]))
    if exact.any():
        p[exact] = _exact_cdf(n1, n2, n1 * n2 - u[exact].astype(np.int64))
    return np.clip(2 * p, 0.0, 1.0)


def _average_ranks(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's average ranks (1-based), its sum of t**3 - t over tie groups, any ties."""
    k, n = rows.shape
    order = np.argsort(rows, axis=1, kind="stable")
    ordered = np.take_along_axis(rows, order, axis=1)
    starts = np.ones((k, n), dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    group = np.cumsum(starts.ravel()) - 1
    first = np.flatnonzero(starts.ravel())
    counts = np.diff(np.append(first, k * n))
    ranks = np.empty((k, n))
    sorted_ranks = (first % n + (counts + 1) / 2)[group].reshape(k, n)
    np.put_along_axis(ranks, order, sorted_ranks, axis=1)
    row_of_group = first // n
    tie_term = np.bincount(row_of_group, weights=counts.astype(float) ** 3 - counts, minlength=k)
    tied = np.bincount(row_of_group, weights=counts > 1, minlength=k) > 0
    return ranks, tie_term, tied


def _z(u: np.ndarray, n1: int, n2: int, tie_term: np.ndarray) -> np.ndarray:
    """The standardised statistic with tie and continuity corrections (scipy's `_get_mwu_z`)."""
    n = n1 + n2
    s = np.sqrt(n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1))))
    with np.errstate(divide="ignore", invalid="ignore"):  # all values equal: s == 0, z = -inf
        return (u - n1 * n2 / 2 - 0.5) / s


def _normal_sf(z: np.ndarray) -> np.ndarray:
    """P(Z >= z) for a standard normal Z, as scipy's `ndtr(-z)` (cephes) computes it."""
    return np.array([_ndtr(-value) for value in z.tolist()], dtype=float)


def _ndtr(a: float) -> float:
    x = a * math.sqrt(0.5)
    if abs(x) < math.sqrt(0.5):
        return 0.5 + 0.5 * math.erf(x)
    y = 0.5 * math.erfc(abs(x))
    return 1.0 - y if x > 0 else y


def _exact_cdf(n1: int, n2: int, k: np.ndarray) -> np.ndarray:
    """P(U <= k) under the null for sizes n1, n2, with k <= n1 * n2 / 2 (scipy's `_MWU.cdf`)."""
    n1, n2 = min(n1, n2), max(n1, n2)
    frequencies = _u_frequencies(n1, n2, int(k.max()))
    return np.cumsum(frequencies[: int(k.max()) + 1] / _binom(n1 + n2, n1))[k]


_FREQUENCIES: dict[tuple[int, int], np.ndarray] = {}


def _u_frequencies(n1: int, n2: int, max_u: int) -> np.ndarray:
    """How many arrangements give U = 0 .. max_u (at least), for n1 <= n2 (scipy's recurrence)."""
    known = _FREQUENCIES.get((n1, n2))
    if known is not None and len(known) > max_u:
        return known
    sigma = _sigma(n1, n2, max_u)
    configurations = np.zeros(max_u + 1, dtype=np.uint64)
    configurations[0] = 1
    is_uint, uint_max = True, np.iinfo(np.uint64).max
    for u in range(1, max_u + 1):
        new_value = np.dot(configurations[:u], sigma[u - 1 :: -1]) / u
        if new_value > uint_max and is_uint:  # beyond uint64: floats from here on, as scipy
            configurations, is_uint = configurations.astype(float), False
        configurations[u] = new_value
    _FREQUENCIES[(n1, n2)] = configurations
    return configurations


def _sigma(n1: int, n2: int, a: int) -> np.ndarray:
    """Löffler's sigma(1) .. sigma(a) for sizes n1 <= n2."""
    sigma = np.zeros(a + 1, dtype=int)
    for d in range(1, n1 + 1):
        sigma[d : a + 1 : d] += d
    for d in range(n2 + 1, n2 + n1 + 1):
        sigma[d : a + 1 : d] -= d
    return sigma[1:]


def _binom(n: int, k: int) -> float:
    """C(n, k) in floats, multiplied as scipy's `special.binom` does for small integer k."""
    if k > n / 2:
        k = n - k
    numerator, denominator = 1.0, 1.0
    for i in range(1, k + 1):
        numerator *= i + n - k
        denominator *= i
        if abs(numerator) > 1e50:
            numerator, denominator = numerator / denominator, 1.0
    return numerator / denominator
