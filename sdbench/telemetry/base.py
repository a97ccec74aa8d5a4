"""The telemetry interface, its null object, a combiner and the background sampler thread."""

from __future__ import annotations

import abc
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sdbench.errors import DeviceError

SAMPLE_HZ = 20.0  # NVML and psutil reads cost well under a millisecond; 20 Hz is noise-free


class TelemetryError(DeviceError):
    """A sensor library answered with an error while a window was open."""


class Telemetry(abc.ABC):
    """Brackets the timed repeats of a cell: `start()`, then `stop()` returns Parquet columns.

    Columns a backend cannot measure are left out (null, "not measured"), never zero.
    """

    name = "none"

    @abc.abstractmethod
    def start(self) -> None:
        """Open the window: note counters, start sampling."""

    @abc.abstractmethod
    def stop(self) -> dict[str, object]:
        """Close the window and return its columns."""

    def close(self) -> None:  # noqa: B027 - most backends hold nothing to release
        """Release the vendor library; the object is unusable afterwards."""


class PolledTelemetry(Telemetry):
    """A vendor backend whose `readers` a Sampler polls over the timed window.

    Subclasses set `readers` (key -> zero-argument read), `vendor` (for messages), `vendor_error`
    (the library's exception type), `clock` and `sampler`.
    """

    vendor = "the sensor library"
    vendor_error: type[BaseException] = Exception
    readers: dict[str, Callable[[], object]]
    clock: Callable[[], float]
    sampler: Sampler
    _window_start_s = 0.0

    def _read(self) -> dict[str, object]:
        values = {}
        for key, read in self.readers.items():
            try:
                values[key] = read()
            except self.vendor_error as error:
                raise TelemetryError(
                    f"{self.vendor} stopped answering while reading {key} during the timed repeats: {error}"
                ) from error
        return values

    def start(self) -> None:
        self._window_start_s = self.clock()
        self.sampler.start()


class NullTelemetry(Telemetry):
    """No sensors: measures nothing and says so with nulls."""

    def __init__(self, reason: str | None = None):
        self.reason = reason  # why no backend could be opened, for `sdbench probe` and debugging

    def start(self) -> None:
        pass

    def stop(self) -> dict[str, object]:
        return {"telemetry_backend": "none"}


class CombinedTelemetry(Telemetry):
    """Several backends over one window (e.g. GPU sensors + host CPU); earlier ones win on clashes."""

    def __init__(self, parts: list[Telemetry]):
        self.parts = parts
        self.name = "+".join(p.name for p in parts) or "none"

    def start(self) -> None:
        for part in self.parts:
            part.start()

    def stop(self) -> dict[str, object]:
        columns: dict[str, object] = {}
        for part in reversed(self.parts):
            columns.update(part.stop())
        columns["telemetry_backend"] = self.name
        return columns

    def close(self) -> None:
        for part in self.parts:
            part.close()


@dataclass
class Sample:
    t_s: float  # seconds on the sampler's clock
    values: dict[str, float | int | None]


class Sampler:
    """Calls `read()` at start, every 1/hz seconds on a daemon thread, and at stop.

    `hz=0` takes only the start and stop samples (deterministic tests use it). The first error
    `read()` raises ends sampling and is raised again by `stop()`.
    """

    def __init__(
        self,
        read: Callable[[], dict],
        hz: float = SAMPLE_HZ,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.read, self.hz, self.clock = read, hz, clock
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        self.samples = []
        self._error = None
        self._stop.clear()
        self._take()
        if self.hz > 0:
            self._thread = threading.Thread(
                target=self._loop, name="sdbench-telemetry", daemon=True
            )
            self._thread.start()

    def _take(self) -> None:
        values = self.read()
        with self._lock:
            self.samples.append(Sample(self.clock(), values))

    def _loop(self) -> None:
        while not self._stop.wait(1.0 / self.hz):
            try:
                self._take()
            except BaseException as error:  # re-raised by stop() in the measuring thread
                self._error = error
                return

    def stop(self) -> list[Sample]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise self._error
        self._take()
        return sorted(self.samples, key=lambda s: s.t_s)


def series(samples: list[Sample], key: str) -> list[tuple[float, float]]:
    """(time, value) pairs of one measured quantity, skipping samples that lack it."""
    return [(s.t_s, float(s.values[key])) for s in samples if s.values.get(key) is not None]


def mean_of(samples: list[Sample], key: str) -> float | None:
    values = [v for _, v in series(samples, key)]
    return sum(values) / len(values) if values else None


def max_of(samples: list[Sample], key: str) -> float | None:
    values = [v for _, v in series(samples, key)]
    return max(values) if values else None


def integrate_j(power_w: list[tuple[float, float]]) -> float | None:
    """Trapezoidal energy of (time s, power W) samples; None with fewer than two."""
    if len(power_w) < 2:
        return None
    return sum(
        (t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in zip(power_w, power_w[1:], strict=False)
    )


def energy_columns(
    energy_j: float | None, window_s: float, min_window_s: float, source: str
) -> dict[str, object]:
    """Energy and average power of a window, or nulls when the window is too short to trust.

    `energy_min_window_s` and `telemetry_window_s` stay in the row either way, so
    `sdbench.quality` can say why energy is missing and what to change.
    """
    trusted = energy_j is not None and window_s >= min_window_s
    return {
        "energy_j": energy_j if trusted else None,
        "avg_power_w": energy_j / window_s if trusted and window_s > 0 else None,
        "energy_source": source,
        "energy_min_window_s": min_window_s,
        "telemetry_window_s": window_s,
    }
