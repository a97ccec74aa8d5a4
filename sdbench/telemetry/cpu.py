"""Host CPU telemetry: frequency and utilisation through psutil, package energy through RAPL.

psutil is passed in (default: the real module) so tests can script it. Utilisation is the
busy share of all logical CPUs between the window's two `cpu_times()` reads, so it needs no
thread; frequency is sampled. `cpu_freq().max` is the single-core boost limit (or 0 in VMs), so
no "below max clock" judgement is made for CPUs: an all-core load never reaches it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import ModuleType

from sdbench.telemetry.base import (
    SAMPLE_HZ,
    Sampler,
    Telemetry,
    energy_columns,
    mean_of,
    series,
)
from sdbench.telemetry.rapl import RAPL_MIN_WINDOW_S, RaplCounter

_IDLE_FIELDS = ("idle", "iowait")


def busy_percent(before: object, after: object) -> float | None:
    """Share of CPU time not idle between two psutil `cpu_times()` snapshots, in percent."""
    fields = before._fields
    total = sum(getattr(after, f) - getattr(before, f) for f in fields)
    # guest time is already counted inside user time on Linux
    total -= sum(
        getattr(after, f) - getattr(before, f) for f in ("guest", "guest_nice") if f in fields
    )
    idle = sum(getattr(after, f) - getattr(before, f) for f in _IDLE_FIELDS if f in fields)
    if total <= 0:
        return None
    return 100.0 * (total - idle) / total


class CpuTelemetry(Telemetry):
    """CPU frequency and utilisation, plus package energy where RAPL is readable."""

    def __init__(
        self,
        psutil_module: ModuleType | None = None,
        rapl: RaplCounter | None = None,
        hz: float = SAMPLE_HZ / 2,
        clock: Callable[[], float] = time.monotonic,
    ):
        if psutil_module is None:
            import psutil as psutil_module
        self.psutil = psutil_module
        self.rapl = rapl
        self.name = "psutil+rapl" if rapl else "psutil"
        self.clock = clock
        self.sampler = Sampler(self._read, hz=hz, clock=clock)
        self._times_before = None
        self._window_start_s = 0.0

    def _read(self) -> dict[str, float | None]:
        values: dict[str, float | None] = {}
        try:
            frequency = self.psutil.cpu_freq()
        except (OSError, NotImplementedError, FileNotFoundError):
            frequency = None  # some VMs and containers expose no frequency at all
        values["freq_mhz"] = float(frequency.current) if frequency and frequency.current else None
        if self.rapl is not None:
            values["rapl_j"] = self.rapl.update()
        return values

    def start(self) -> None:
        if self.rapl is not None:
            self.rapl.reset()
        self._times_before = self.psutil.cpu_times()
        self._window_start_s = self.clock()
        self.sampler.start()

    def stop(self) -> dict[str, object]:
        samples = self.sampler.stop()
        window_s = self.clock() - self._window_start_s
        columns: dict[str, object] = {
            "cpu_freq_mhz": mean_of(samples, "freq_mhz"),
            "cpu_util_pct": busy_percent(self._times_before, self.psutil.cpu_times()),
            "telemetry_window_s": window_s,
        }
        if self.rapl is not None:
            columns.update(energy_columns(self.rapl.total_j, window_s, RAPL_MIN_WINDOW_S, "rapl"))
            columns["max_power_w"] = max_interval_power_w(series(samples, "rapl_j"))
        return columns


def max_interval_power_w(energy_j: list[tuple[float, float]]) -> float | None:
    """Highest average power between consecutive reads of a running energy total."""
    powers = [
        (e1 - e0) / (t1 - t0)
        for (t0, e0), (t1, e1) in zip(energy_j, energy_j[1:], strict=False)
        if t1 > t0
    ]
    return max(powers) if powers else None
