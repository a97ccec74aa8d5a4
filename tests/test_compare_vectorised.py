"""compare's vectorised latency statistics agree with the per-cell reference they replaced.

The reference is the algorithm compare used cell by cell before issue 16's 10k-cell case: a
Mann-Whitney U test per cell, and a bootstrap that draws every resample and takes its median.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from sdbench.analysis.compare import (
    Settings,
    bootstrap_median_positions,
    bootstrap_ratio_ci,
    compare_runs,
)
from sdbench.cell import Cell
from tests.test_compare import make_row


def reference_bootstrap_ci(base, cur, resamples, seed, level=0.95):
    """The old bootstrap: draw n indices per resample on each side, take each resample's median."""
    rng = np.random.default_rng(seed)
    base_medians = np.median(base[rng.integers(0, len(base), (resamples, len(base)))], axis=1)
    cur_medians = np.median(cur[rng.integers(0, len(cur), (resamples, len(cur)))], axis=1)
    tail = (1 - level) / 2 * 100
    return np.percentile(cur_medians / base_medians, [tail, 100 - tail])


def reference_verdict(base, cur, settings):
    p_value = scipy_stats.mannwhitneyu(cur, base, alternative="two-sided").pvalue
    change_pct = 100 * (np.median(cur) / np.median(base) - 1)
    if p_value < settings.alpha and change_pct >= settings.threshold_pct:
        return "slower", p_value
    if p_value < settings.alpha and change_pct <= -settings.threshold_pct:
        return "faster", p_value
    return "unchanged", p_value


@pytest.mark.parametrize("n", [2, 7, 8, 25])
def test_bootstrap_medians_by_order_statistics_have_the_resampled_distribution(n):
    rng = np.random.default_rng(n)
    sample = np.sort(rng.lognormal(0.0, 0.3, n))
    draws = 200_000
    lower, upper = bootstrap_median_positions(n, draws, np.random.default_rng(1))
    fast = (sample[lower] + sample[upper]) / 2
    brute = np.median(sample[rng.integers(0, n, (draws, n))], axis=1)
    values = np.union1d(np.unique(fast), np.unique(brute))
    fast_p = np.searchsorted(np.sort(fast), values, side="right") / draws
    brute_p = np.searchsorted(np.sort(brute), values, side="right") / draws
    assert np.abs(fast_p - brute_p).max() < 0.006  # the CDFs agree to Monte Carlo error


def _random_runs(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """40 cells: sample sizes 3 to 60 (exact and asymptotic tests), ties, planted changes."""
    rng = np.random.default_rng(seed)
    base_rows, cur_rows = [], []
    for index in range(40):
        cell = Cell("sd15", "unet", "cpu", 64 + 8 * index, 64, 1, "fp32", "sdpa", "none")
        n_base, n_cur = rng.choice([3, 5, 9, 20, 60]), rng.choice([3, 5, 9, 20, 60])
        change = rng.choice([1.0, 1.0, 1.08, 0.9, 1.03])
        base = 10.0 * rng.lognormal(0.0, 0.03, n_base)
        cur = 10.0 * change * rng.lognormal(0.0, 0.03, n_cur)
        if index % 5 == 0:  # a coarse clock: ties
            base, cur = np.round(base, 1), np.round(cur, 1)
        base_rows.append(make_row(cell, "a", base.tolist()))
        cur_rows.append(make_row(cell, "b", cur.tolist()))
    return pd.DataFrame(base_rows), pd.DataFrame(cur_rows)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_compare_gives_the_per_cell_references_verdicts_p_values_and_cis(seed):
    base, cur = _random_runs(seed)
    settings = Settings()
    table = compare_runs(base, cur).table.query("metric == 'median_ms'").set_index("cell_id")
    assert len(table) == 40
    verdicts = set()
    for (_, b), (_, c) in zip(base.iterrows(), cur.iterrows(), strict=True):
        row = table.loc[b["cell_id"]]
        b_ms, c_ms = np.asarray(b["samples_ms"]), np.asarray(c["samples_ms"])
        verdict, p_value = reference_verdict(b_ms, c_ms, settings)
        verdicts.add(verdict)
        assert row["verdict"] == verdict and row["p_value"] == pytest.approx(p_value, rel=1e-12)
        assert row["baseline"] == np.median(b_ms) and row["current"] == np.median(c_ms)
        assert (row["ratio_ci_low"], row["ratio_ci_high"]) == bootstrap_ratio_ci(b_ms, c_ms)
        low, high = reference_bootstrap_ci(b_ms, c_ms, 20_000, seed)
        spread = max(high - low, 1e-3)
        assert abs(row["ratio_ci_low"] - low) < 0.15 * spread
        assert abs(row["ratio_ci_high"] - high) < 0.15 * spread
    assert {"slower", "faster", "unchanged"} <= verdicts  # the case exercises every verdict
