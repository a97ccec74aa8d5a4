"""Quality warnings attached to a measured cell: each names the cause and what to do about it.

Pure functions over a row's figures (no torch), so the run summary, compare and the report all
show the same warnings.
"""

from __future__ import annotations

from collections.abc import Sequence


def timing_warnings(
    samples_ms: Sequence[float],
    warmup_ms: Sequence[float],
    rel_ci_half_width: float,
    target_rel_ci: float,
) -> list[str]:
    warnings: list[str] = []
    if not samples_ms:
        return warnings
    ordered = sorted(samples_ms)
    n = len(ordered)
    median = ordered[n // 2]
    q1, q3 = ordered[n // 4], ordered[(3 * n) // 4]
    if median > 0 and (q3 - q1) / median > 0.10:
        warnings.append(
            f"high spread: IQR is {100 * (q3 - q1) / median:.0f}% of the median; close other programs, "
            "lock clocks, or raise min_repeats"
        )
    first = warmup_ms[0] if warmup_ms else samples_ms[0]
    if median > 0 and not warmup_ms and first > 1.5 * median:
        warnings.append(
            f"first call {first / median:.1f}x slower than the median and no warm-up ran; set [measure] warmup >= 1"
        )
    elif median > 0 and len(warmup_ms) >= 2 and warmup_ms[-1] > 1.5 * median:
        warnings.append(
            f"last warm-up call was {warmup_ms[-1] / median:.1f}x the median: not yet warm; raise [measure] warmup"
        )
    if n >= 6 and rel_ci_half_width > target_rel_ci:
        warnings.append(
            f"median known to +-{100 * rel_ci_half_width:.1f}% (target {100 * target_rel_ci:.1f}%): "
            "raise max_time_s or max_repeats for a tighter figure"
        )
    if n < 6:
        warnings.append(
            f"only {n} samples: the 95% CI is the sample range; raise min_repeats to 6 or more"
        )
    return warnings
