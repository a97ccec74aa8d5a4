"""AMD GPU telemetry through AMD SMI (`amdsmi`, shipped with ROCm 6+).

Like the NVML backend, it takes the library module as a parameter so tests can script it.
Energy comes from the accumulator (ticks x counter_resolution microjoules; the key is `power` in
ROCm 6.0-6.1 and `energy_accumulator` later), power in watts from `amdsmi_get_power_info`
(`socket_power`, or `current_socket_power`/`average_socket_power` on older releases, "N/A" when
absent). AMD SMI exposes no clock-event reasons in a stable form, so throttle_reasons stays null.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from types import ModuleType

from sdbench.telemetry.base import (
    SAMPLE_HZ,
    PolledTelemetry,
    Sampler,
    TelemetryError,
    energy_columns,
    max_of,
    mean_of,
    series,
)

# The accumulator follows the SMU's 1 ms power samples but the driver refreshes it more slowly
# (tens of ms on MI2xx/MI3xx); half a second keeps quantisation error to a few percent.
ACCUMULATOR_MIN_WINDOW_S = 0.5


def _import_amdsmi() -> ModuleType:
    try:
        import amdsmi
    except ImportError as error:
        raise TelemetryError("AMD telemetry needs AMD SMI: install amdsmi from ROCm") from error
    return amdsmi


def _number(value: object) -> float | None:
    """A reading as a float; AMD SMI answers "N/A" for quantities a part does not report."""
    return float(value) if isinstance(value, int | float) else None


class AmdSmiTelemetry(PolledTelemetry):
    """Energy, power, GFX/memory clocks, hotspot temperature and VRAM use of one AMD GPU."""

    name = "amdsmi"

    def __init__(
        self,
        index: int = 0,
        amdsmi: ModuleType | None = None,
        hz: float = SAMPLE_HZ,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.smi = amdsmi if amdsmi is not None else _import_amdsmi()
        self._call(self.smi.amdsmi_init)
        try:
            handles = self._call(self.smi.amdsmi_get_processor_handles)
            if index >= len(handles):
                raise TelemetryError(f"AMD SMI sees {len(handles)} GPUs; there is no GPU {index}")
            self.handle = handles[index]
            self.readers = self._supported_readers()
            gfx = self._optional(
                lambda: self.smi.amdsmi_get_clock_info(self.handle, self.smi.AmdSmiClkType.GFX)
            )
            self.max_gfx_clock_mhz = _number(gfx.get("max_clk")) if gfx else None
        except TelemetryError:
            self.close()
            raise
        self.vendor, self.vendor_error = "AMD SMI", self.smi.AmdSmiException
        self.clock = clock
        self.sampler = Sampler(self._read, hz=hz, clock=clock)

    def _call(self, function: Callable, *args):
        try:
            return function(*args)
        except self.smi.AmdSmiException as error:
            name = getattr(function, "__name__", "query")
            raise TelemetryError(f"AMD SMI {name} failed: {error}") from error

    def _optional(self, read: Callable[[], object]) -> object | None:
        try:
            return read()
        except self.smi.AmdSmiException:
            return None  # not supported on this part, driver or VM guest

    def _energy_uj(self) -> float:
        reading = self.smi.amdsmi_get_energy_count(self.handle)
        ticks = reading.get("energy_accumulator", reading.get("power"))
        return float(ticks) * float(reading["counter_resolution"])

    def _power_w(self) -> float | None:
        info = self.smi.amdsmi_get_power_info(self.handle)
        for key in ("socket_power", "current_socket_power", "average_socket_power"):
            value = _number(info.get(key))
            if value is not None:
                return value
        return None

    def _supported_readers(self) -> dict[str, Callable[[], float | None]]:
        smi, handle = self.smi, self.handle
        candidates: dict[str, Callable[[], float | None]] = {
            "energy_uj": self._energy_uj,
            "power_w": self._power_w,
            "temp_c": lambda: _number(
                smi.amdsmi_get_temp_metric(
                    handle, smi.AmdSmiTemperatureType.HOTSPOT, smi.AmdSmiTemperatureMetric.CURRENT
                )
            ),
            "gfx_mhz": lambda: _number(
                smi.amdsmi_get_clock_info(handle, smi.AmdSmiClkType.GFX).get("clk")
            ),
            "mem_mhz": lambda: _number(
                smi.amdsmi_get_clock_info(handle, smi.AmdSmiClkType.MEM).get("clk")
            ),
            "vram_used_bytes": lambda: _number(
                smi.amdsmi_get_gpu_memory_usage(handle, smi.AmdSmiMemoryType.VRAM)
            ),
        }
        return {key: read for key, read in candidates.items() if self._optional(read) is not None}

    def stop(self) -> dict[str, object]:
        samples = self.sampler.stop()
        window_s = self.clock() - self._window_start_s
        energy = series(samples, "energy_uj")
        columns: dict[str, object] = {"telemetry_window_s": window_s}
        if energy:
            columns = energy_columns(
                (energy[-1][1] - energy[0][1]) / 1e6, window_s, ACCUMULATOR_MIN_WINDOW_S, "counter"
            )
        used = max_of(samples, "vram_used_bytes")
        columns.update(
            max_power_w=max_of(samples, "power_w"),
            max_temp_c=max_of(samples, "temp_c"),
            sm_clock_mhz=mean_of(samples, "gfx_mhz"),
            sm_clock_max_mhz=self.max_gfx_clock_mhz,
            mem_clock_mhz=mean_of(samples, "mem_mhz"),
            peak_mem_device_bytes=int(used) if used is not None else None,
        )
        return columns

    def close(self) -> None:
        # never initialised: nothing to release
        with contextlib.suppress(self.smi.AmdSmiException):
            self.smi.amdsmi_shut_down()
