"""Time a workload: warm-up, then device-synchronised repeats until the median is known well enough.

CUDA calls are timed with CUDA events (device time, no host jitter), MPS/XPU with a synchronize
and perf_counter, the CPU with perf_counter. Every sample is kept; statistics derive from them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sdbench.cell import Measure
from sdbench.devices.backend import backend_for
from sdbench.stats import CI_MIN_SAMPLES, summarize


@dataclass
class Timing:
    """What a sampler returns: every timed sample and every warm-up call, in milliseconds."""

    samples_ms: list[float]
    warmup_ms: list[float]
    timed_s: float  # wall seconds spent inside timed calls


class Timer:
    """Times one call of `fn` on `device` in milliseconds, through the device's backend."""

    def __init__(self, device: str):
        self.backend = backend_for(device)
        self.synchronize = self.backend.synchronize

    def __call__(self, fn: Callable[[], object]) -> float:
        return self.backend.time_ms(fn)


# What runs a cell's warm-up and timed repeats: (call, timer, measure, on_window) -> Timing.
# The worker's is `time_calls`; the pytest plugin's hands the repeats to pytest-benchmark.
Sampler = Callable[[Callable[[], object], Timer, Measure, Callable[[bool], None] | None], Timing]


def enough(samples_ms: list[float], measure: Measure, elapsed_s: float) -> bool:
    """Stop once min_repeats are in and the median's CI is tight, time is up, or max_repeats reached."""
    n = len(samples_ms)
    if n >= measure.max_repeats:
        return True
    if n < measure.min_repeats:
        return False
    if elapsed_s >= measure.max_time_s:
        return True
    return n >= CI_MIN_SAMPLES and summarize(samples_ms).rel_ci_half_width <= measure.target_rel_ci


def time_calls(
    fn: Callable[[], object],
    timer: Timer,
    measure: Measure,
    on_window: Callable[[bool], None] | None = None,
) -> Timing:
    """Warm up, then repeat until `enough`; `on_window(True/False)` brackets the timed repeats."""
    warmup_ms = [timer(fn) for _ in range(measure.warmup)]
    samples: list[float] = []
    if on_window:
        on_window(True)
    begin = time.perf_counter()
    try:
        while not enough(samples, measure, time.perf_counter() - begin):
            samples.append(timer(fn))
    finally:
        if on_window:
            on_window(False)
    return Timing(samples, warmup_ms, timed_s=sum(samples) / 1000.0)
