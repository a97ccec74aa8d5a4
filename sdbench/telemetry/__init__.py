"""Device telemetry (power, energy, clocks, temperature) behind one small interface.

`open_telemetry(device)` returns a backend whose `start()`/`stop()` bracket the timed repeats of a
cell; `stop()` returns Parquet columns (energy_j, avg_power_w, sm_clock_mhz, ...). NVIDIA GPUs
read NVML, AMD GPUs (ROCm builds of torch) AMD SMI, and the host CPU psutil plus RAPL where
readable. A sensor library that is missing or refuses never stops a run: its figures stay null
("not measured", never zero) and `telemetry_error` says why.
"""

from __future__ import annotations

import os

from sdbench.devices.device import Device, device_kind
from sdbench.telemetry.base import CombinedTelemetry, NullTelemetry, Telemetry, TelemetryError
from sdbench.telemetry.cpu import CpuTelemetry
from sdbench.telemetry.rapl import POWERCAP, RaplCounter, package_zones

__all__ = [
    "CombinedTelemetry",
    "NullTelemetry",
    "Telemetry",
    "TelemetryError",
    "open_telemetry",
]


def open_telemetry(device: str) -> Telemetry:
    """The sensors for `device`: its GPU's vendor library (if any) plus the host CPU."""
    kind = device_kind(device)
    parts: list[Telemetry] = []
    error = None
    if kind == "cuda":
        try:
            parts.append(_gpu_backend(device))
        except TelemetryError as failure:
            error = str(failure)
    # CPU package energy is the cell's energy only when the CPU does the work.
    zones = package_zones(POWERCAP) if kind == "cpu" else []
    parts.append(CpuTelemetry(rapl=RaplCounter(zones) if zones else None))
    return _WithError(parts, error) if error else CombinedTelemetry(parts)


class _WithError(CombinedTelemetry):
    """The backends that opened, plus the reason the device's own sensors could not be read."""

    def __init__(self, parts: list[Telemetry], error: str):
        super().__init__(parts)
        self.error = error

    def stop(self) -> dict[str, object]:
        return {**super().stop(), "telemetry_error": self.error}


def _gpu_backend(device: str) -> Telemetry:
    import torch

    index = Device.parse(device).index or 0
    if not torch.cuda.is_available():
        raise TelemetryError(f"torch sees no GPU for {device}: no GPU sensors to read")
    if torch.version.hip:
        from sdbench.telemetry.amd import AmdSmiTelemetry

        return AmdSmiTelemetry(index=_visible_index(index))
    from sdbench.telemetry.nvidia import NvmlTelemetry

    return NvmlTelemetry(
        index=index,
        uuid=_nvml_uuid(torch, index),
        index_fallback="CUDA_VISIBLE_DEVICES" not in os.environ,
    )


def _nvml_uuid(torch, index: int) -> str | None:
    """The GPU's UUID as NVML spells it, so CUDA_VISIBLE_DEVICES reordering cannot mismatch."""
    uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
    if uuid is None:
        return None
    text = str(uuid)
    return text if text.startswith(("GPU-", "MIG-")) else f"GPU-{text}"


def _visible_index(index: int) -> int:
    """AMD SMI numbers every GPU in the machine; HIP_VISIBLE_DEVICES may hide some from torch."""
    for variable in ("HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"):
        visible = os.environ.get(variable)
        if visible:
            ids = [v.strip() for v in visible.split(",") if v.strip()]
            if index < len(ids) and ids[index].isdigit():
                return int(ids[index])
    return index
