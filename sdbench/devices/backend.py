"""One small interface per device kind: synchronize, time a call, reset and read memory peaks,
name and facts. Callers ask `backend_for(device)` and never branch on the device string.

Implementations: CPU (and the shape-only meta device), CUDA, ROCm (a CUDA device to torch, with
its own name and facts), MPS and XPU. `torch` is injectable, so the tested code is the hardware
code. Imports torch: worker side only.
"""

from __future__ import annotations

import abc
import functools
import platform
import time
from collections.abc import Callable

from sdbench.devices.device import Device


class DeviceBackend(abc.ABC):
    """What sdbench needs of a device while it measures."""

    kind = "none"

    def __init__(self, device: Device, torch_module=None):
        if torch_module is None:
            import torch as torch_module
        self.device = device
        self.torch = torch_module

    @abc.abstractmethod
    def synchronize(self) -> None:
        """Wait until every kernel queued on the device has finished."""

    def time_ms(self, fn: Callable[[], object]) -> float:
        """One call of `fn` in milliseconds, from a synchronized start to a synchronized end."""
        self.synchronize()
        begin = time.perf_counter()
        fn()
        self.synchronize()
        return (time.perf_counter() - begin) * 1000.0

    def empty_cache(self) -> None:  # noqa: B027 - the CPU keeps no allocator cache
        """Give the allocator's cached blocks back, so the next cell's peak is its own."""

    def reset_peaks(self) -> None:  # noqa: B027 - a device without peak counters
        """Start the device's peak memory counters afresh."""

    def peaks(self) -> dict[str, int | None]:
        """The device allocator's peaks since `reset_peaks` (None: not measured here)."""
        return {"peak_mem_allocated_bytes": None, "peak_mem_reserved_bytes": None}

    @abc.abstractmethod
    def name(self) -> str:
        """The device's marketing name, as rows record it in `device_name`."""

    def facts(self) -> dict[str, object]:
        """What the device is: id, kind, backend, name, memory and compute capability."""
        return {
            "id": self.device.id,
            "kind": self.device.kind,
            "backend": self.kind,
            "name": self.name(),
            "memory_bytes": None,
            "compute_capability": None,
        }


class CpuBackend(DeviceBackend):
    """The host CPU: work is done when the call returns; memory is the process's (runner.memory)."""

    kind = "cpu"

    def synchronize(self) -> None:
        pass

    def name(self) -> str:
        from sdbench.devices.detect import cpu_model

        return cpu_model()


class MetaBackend(CpuBackend):
    """The meta device: shapes only (FLOP counting); nothing runs, nothing to wait for."""

    kind = "meta"

    def name(self) -> str:
        return "meta (shapes only)"


class _AllocatorBackend(DeviceBackend):
    """A device whose torch module keeps allocator peaks (torch.cuda, torch.xpu)."""

    @property
    def module(self):
        return getattr(self.torch, self.device.kind)

    def synchronize(self) -> None:
        self.module.synchronize(self.device.id)

    def empty_cache(self) -> None:
        self.module.empty_cache()

    def reset_peaks(self) -> None:
        self.module.reset_peak_memory_stats(self.device.id)

    def peaks(self) -> dict[str, int | None]:
        return {
            "peak_mem_allocated_bytes": int(self.module.max_memory_allocated(self.device.id)),
            "peak_mem_reserved_bytes": int(self.module.max_memory_reserved(self.device.id)),
        }

    def name(self) -> str:
        return self.module.get_device_properties(self.device.id).name

    def facts(self) -> dict[str, object]:
        properties = self.module.get_device_properties(self.device.id)
        return {**super().facts(), "memory_bytes": properties.total_memory}


class CudaBackend(_AllocatorBackend):
    """An NVIDIA GPU: CUDA events time the device itself, free of host jitter."""

    kind = "cuda"

    def time_ms(self, fn: Callable[[], object]) -> float:
        event = self.torch.cuda.Event
        start, end = event(enable_timing=True), event(enable_timing=True)
        self.synchronize()
        start.record()
        fn()
        end.record()
        end.synchronize()
        return float(start.elapsed_time(end))

    def facts(self) -> dict[str, object]:
        properties = self.torch.cuda.get_device_properties(self.device.id)
        return {
            **super().facts(),
            "compute_capability": f"{properties.major}.{properties.minor}",
            "multiprocessors": properties.multi_processor_count,
        }


class RocmBackend(CudaBackend):
    """An AMD GPU under ROCm: a cuda device to torch (HIP events time it the same way)."""

    kind = "rocm"

    def facts(self) -> dict[str, object]:
        architecture = getattr(
            self.torch.cuda.get_device_properties(self.device.id), "gcnArchName", ""
        )
        return {**super().facts(), "gfx_arch": architecture.split(":")[0] or None}


class XpuBackend(_AllocatorBackend):
    """An Intel GPU (torch.xpu)."""

    kind = "xpu"


class MpsBackend(DeviceBackend):
    """Apple silicon (torch.mps): no peak counter, the driver's allocation is a lower bound."""

    kind = "mps"

    def synchronize(self) -> None:
        self.torch.mps.synchronize()

    def empty_cache(self) -> None:
        self.torch.mps.empty_cache()

    def peaks(self) -> dict[str, int | None]:
        return {
            "peak_mem_allocated_bytes": None,
            "peak_mem_reserved_bytes": int(self.torch.mps.driver_allocated_memory()),
        }

    def name(self) -> str:
        return f"Apple {platform.machine()} GPU (MPS)"

    def facts(self) -> dict[str, object]:
        import psutil

        return {**super().facts(), "memory_bytes": psutil.virtual_memory().total}  # unified


def _backend_class(device: Device, torch_module) -> type[DeviceBackend]:
    if device.kind == "cuda":
        return RocmBackend if getattr(torch_module.version, "hip", None) else CudaBackend
    classes = {"cpu": CpuBackend, "meta": MetaBackend, "mps": MpsBackend, "xpu": XpuBackend}
    if device.kind not in classes:
        raise ValueError(f"no device backend for {device.id!r} (kinds: cpu, cuda, mps, xpu, meta)")
    return classes[device.kind]


def open_backend(device: str | Device, torch_module=None) -> DeviceBackend:
    """The backend for `device` (the factory); `torch_module` replaces torch in tests."""
    if torch_module is None:
        import torch as torch_module
    parsed = Device.parse(device)
    return _backend_class(parsed, torch_module)(parsed, torch_module)


@functools.cache
def backend_for(device: str) -> DeviceBackend:
    """The process's backend for `device`, opened once."""
    return open_backend(device)
