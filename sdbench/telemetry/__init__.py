"""Device telemetry (power, energy, clocks, temperature) behind one small interface.

`open_telemetry(device)` returns a backend whose `start()`/`stop()` bracket the timed repeats of a
cell; `stop()` returns Parquet columns (energy_j, avg_power_w, ...). Machines with no readable
sensors get the null backend: every figure stays null ("not measured"), never zero.
"""

from __future__ import annotations


class NullTelemetry:
    """No sensors: measures nothing and says so with nulls."""

    name = "none"

    def start(self) -> None:
        pass

    def stop(self) -> dict[str, object]:
        return {}

    def close(self) -> None:
        pass


def open_telemetry(device: str) -> NullTelemetry:
    return NullTelemetry()
