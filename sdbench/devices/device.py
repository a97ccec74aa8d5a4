"""A device as suites, cells and rows name it (`cpu`, `cuda:1`, `mps`, `xpu:0`, `meta`): a value.

The one place a device string is taken apart; no torch. `sdbench.devices.backend` gives each
kind its synchronize, timer and memory counters.
"""

from __future__ import annotations

from dataclasses import dataclass

# torch device types; a ROCm GPU is a "cuda" device to torch (its backend says "rocm").
KINDS = ("cpu", "cuda", "mps", "xpu", "meta")
ACCELERATOR_KINDS = ("cuda", "mps", "xpu")


@dataclass(frozen=True)
class Device:
    """One device id split into its kind and index (None when the id names no index)."""

    id: str
    kind: str
    index: int | None = None

    @classmethod
    def parse(cls, device: str | Device) -> Device:
        if isinstance(device, Device):
            return device
        kind, _, index = str(device).partition(":")
        return cls(str(device), kind, int(index) if index.isdigit() else None)

    @property
    def is_accelerator(self) -> bool:
        return self.kind in ACCELERATOR_KINDS

    def __str__(self) -> str:
        return self.id


def device_kind(device: str | Device) -> str:
    """`cuda` for "cuda:1", `cpu` for "cpu": the device's kind."""
    return Device.parse(device).kind
