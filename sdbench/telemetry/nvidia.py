"""NVIDIA GPU telemetry through NVML (`nvidia-ml-py`, module `pynvml`).

The backend takes the pynvml module as a parameter: production passes nothing and gets the real
library; tests pass a scripted stand-in, so the code that reads real hardware is the code tested.
Units from NVML: power mW, energy mJ, clocks MHz, temperature degrees C, memory bytes.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from types import ModuleType

from sdbench.telemetry.base import (
    SAMPLE_HZ,
    PolledTelemetry,
    Sampler,
    TelemetryError,
    energy_columns,
    integrate_j,
    max_of,
    mean_of,
    series,
)

# The total-energy counter (Volta and later) updates about every 100 ms: five updates bound its
# quantisation error to about 20% in the worst case and a few percent typically.
COUNTER_MIN_WINDOW_S = 0.5
# Without the counter we integrate nvmlDeviceGetPowerUsage, a ~1 s moving average on recent GPUs:
# it lags the load by about half a second, so only windows of several seconds integrate honestly.
POWER_AVERAGE_MIN_WINDOW_S = 5.0

# Clock-event (throttle) reason bits, nvml.h `nvmlClocksEventReason*`. GPU idle is not a
# slowdown of a running kernel, so it is never reported.
CLOCK_EVENT_REASONS = {
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}


def decode_clock_event_reasons(mask: int) -> list[str]:
    """Names of the clock-event bits set in `mask`, in bit order (idle and unknown bits left out)."""
    return [name for bit, name in CLOCK_EVENT_REASONS.items() if mask & bit]


def _import_pynvml() -> ModuleType:
    try:
        import pynvml
    except ImportError as error:
        raise TelemetryError(
            "NVIDIA telemetry needs nvidia-ml-py: pip install nvidia-ml-py"
        ) from error
    return pynvml


class NvmlTelemetry(PolledTelemetry):
    """Power, energy, clocks, temperature, clock-event reasons and memory of one NVIDIA GPU."""

    name = "nvml"

    def __init__(
        self,
        index: int = 0,
        uuid: str | None = None,
        nvml: ModuleType | None = None,
        hz: float = SAMPLE_HZ,
        clock: Callable[[], float] = time.monotonic,
        index_fallback: bool = True,
    ):
        self.nvml = nvml if nvml is not None else _import_pynvml()
        self._call(self.nvml.nvmlInit)
        try:
            self.handle = self._handle(index, uuid, index_fallback)
            self.readers = self._supported_readers()
            self.max_sm_clock_mhz = self._optional(
                self.nvml.nvmlDeviceGetMaxClockInfo, self.handle, self.nvml.NVML_CLOCK_SM
            )
        except TelemetryError:
            self.close()
            raise
        self.vendor, self.vendor_error = "NVML", self.nvml.NVMLError
        self.clock = clock
        self.sampler = Sampler(self._read, hz=hz, clock=clock)

    def _handle(self, index: int, uuid: str | None, index_fallback: bool):
        """The GPU by UUID (immune to CUDA_VISIBLE_DEVICES and CUDA_DEVICE_ORDER), else by index.

        NVML numbers GPUs in PCI order for the whole machine; `index_fallback` is only safe when
        no CUDA_VISIBLE_DEVICES renumbers them for torch.
        """
        if uuid:
            try:
                return self._call(self.nvml.nvmlDeviceGetHandleByUUID, uuid)
            except TelemetryError:
                if not index_fallback:
                    raise
        return self._call(self.nvml.nvmlDeviceGetHandleByIndex, index)

    def _call(self, function: Callable, *args):
        try:
            return function(*args)
        except self.nvml.NVMLError as error:
            raise TelemetryError(f"NVML {function.__name__} failed: {error}") from error

    def _optional(self, function: Callable, *args):
        """The value, or None where this GPU or driver does not support the query."""
        try:
            return function(*args)
        except self.nvml.NVMLError as error:
            unsupported = {
                self.nvml.NVML_ERROR_NOT_SUPPORTED,
                self.nvml.NVML_ERROR_FUNCTION_NOT_FOUND,
                self.nvml.NVML_ERROR_NO_PERMISSION,
            }
            if getattr(error, "value", None) in unsupported:
                return None
            raise TelemetryError(f"NVML {function.__name__} failed: {error}") from error

    def _supported_readers(self) -> dict[str, Callable[[], float | int]]:
        """One reader per quantity this GPU answers; unsupported ones are left out for good."""
        nvml, handle = self.nvml, self.handle
        candidates: dict[str, Callable[[], float | int]] = {
            "energy_mj": lambda: nvml.nvmlDeviceGetTotalEnergyConsumption(handle),
            "power_mw": lambda: nvml.nvmlDeviceGetPowerUsage(handle),
            "temp_c": lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU),
            "sm_mhz": lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM),
            "mem_mhz": lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_MEM),
            "mem_used_bytes": lambda: nvml.nvmlDeviceGetMemoryInfo(handle).used,
        }
        readers = {
            key: read for key, read in candidates.items() if self._optional(read) is not None
        }
        # "throttle reasons" became "clocks event reasons" in NVML 12.2; drivers older than
        # that lack the new entry point even when the Python binding has it
        for name in (
            "nvmlDeviceGetCurrentClocksEventReasons",
            "nvmlDeviceGetCurrentClocksThrottleReasons",
        ):
            query = getattr(nvml, name, None)
            if query is not None and self._optional(query, handle) is not None:
                readers["reasons_mask"] = functools.partial(query, handle)
                break
        return readers

    def stop(self) -> dict[str, object]:
        samples = self.sampler.stop()
        window_s = self.clock() - self._window_start_s
        power_w = [(t, mw / 1000.0) for t, mw in series(samples, "power_mw")]
        energy = series(samples, "energy_mj")
        if energy:
            columns = energy_columns(
                (energy[-1][1] - energy[0][1]) / 1000.0, window_s, COUNTER_MIN_WINDOW_S, "counter"
            )
        elif power_w:
            columns = energy_columns(
                integrate_j(power_w), window_s, POWER_AVERAGE_MIN_WINDOW_S, "integrated power"
            )
        else:
            columns = {"telemetry_window_s": window_s}
        columns["max_power_w"] = max(p for _, p in power_w) if power_w else None
        columns["max_temp_c"] = max_of(samples, "temp_c")
        columns["sm_clock_mhz"] = mean_of(samples, "sm_mhz")
        columns["sm_clock_max_mhz"] = (
            float(self.max_sm_clock_mhz) if self.max_sm_clock_mhz else None
        )
        columns["mem_clock_mhz"] = mean_of(samples, "mem_mhz")
        used = max_of(samples, "mem_used_bytes")
        columns["peak_mem_device_bytes"] = int(used) if used is not None else None
        if "reasons_mask" in self.readers:
            mask = 0
            for _, value in series(samples, "reasons_mask"):
                mask |= int(value)
            columns["throttle_reasons"] = ",".join(decode_clock_event_reasons(mask))
        return columns

    def close(self) -> None:
        # never initialised, or the driver went away: nothing left to release
        with contextlib.suppress(self.nvml.NVMLError):
            self.nvml.nvmlShutdown()
