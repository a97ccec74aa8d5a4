"""Time a workload: warm-up, then device-synchronised repeats until the median is known well enough.

CUDA calls are timed with CUDA events (device time, no host jitter), MPS/XPU with a synchronize
and perf_counter, the CPU with perf_counter. Every sample is kept; statistics derive from them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from sdbench.cell import Measure
from sdbench.stats import summarize


@dataclass
class Timing:
    samples_ms: list[float]
    warmup_ms: list[float]
    timed_s: float  # wall seconds spent inside timed calls

    @property
    def first_call_ms(self) -> float | None:
        return (
            self.warmup_ms[0]
            if self.warmup_ms
            else (self.samples_ms[0] if self.samples_ms else None)
        )


class Timer:
    """Times one call of `fn` on `device` in milliseconds."""

    def __init__(self, device: str, synchronize: Callable[[], None]):
        self.kind = device.split(":")[0]
        self.synchronize = synchronize

    def __call__(self, fn: Callable[[], object]) -> float:
        if self.kind == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            self.synchronize()
            start.record()
            fn()
            end.record()
            end.synchronize()
            return float(start.elapsed_time(end))
        self.synchronize()
        begin = time.perf_counter()
        fn()
        self.synchronize()
        return (time.perf_counter() - begin) * 1000.0


def enough(samples_ms: list[float], measure: Measure, elapsed_s: float) -> bool:
    """Stop once min_repeats are in and the median's CI is tight, time is up, or max_repeats reached."""
    n = len(samples_ms)
    if n >= measure.max_repeats:
        return True
    if n < measure.min_repeats:
        return False
    if elapsed_s >= measure.max_time_s:
        return True
    return n >= 6 and summarize(samples_ms).rel_ci_half_width <= measure.target_rel_ci


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
