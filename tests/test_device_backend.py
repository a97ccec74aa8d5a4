"""The device layer: a frozen Device value, and one backend per kind behind one interface.

A fake torch module stands in for the GPU libraries, so the code under test is the hardware code.
"""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import pytest

from sdbench.devices.backend import (
    CpuBackend,
    CudaBackend,
    MetaBackend,
    MpsBackend,
    RocmBackend,
    XpuBackend,
    open_backend,
)
from sdbench.devices.device import Device, device_kind


def test_a_device_id_splits_into_kind_and_index():
    assert Device.parse("cuda:1") == Device("cuda:1", "cuda", 1)
    assert Device.parse("mps") == Device("mps", "mps", None)
    assert Device.parse(Device.parse("xpu:0")).index == 0
    assert device_kind("cpu") == "cpu" and device_kind("cuda:3") == "cuda"
    assert Device.parse("cuda:0").is_accelerator and not Device.parse("cpu").is_accelerator
    with pytest.raises(dataclasses.FrozenInstanceError):
        Device.parse("cpu").kind = "cuda"  # type: ignore[misc]


class FakeAllocator:
    """torch.cuda / torch.xpu as the backends use them; records what was asked of it."""

    def __init__(self):
        self.calls: list[tuple] = []

    def synchronize(self, device):
        self.calls.append(("synchronize", device))

    def empty_cache(self):
        self.calls.append(("empty_cache",))

    def reset_peak_memory_stats(self, device):
        self.calls.append(("reset", device))

    def max_memory_allocated(self, device):
        return 3 << 30

    def max_memory_reserved(self, device):
        return 4 << 30

    def get_device_properties(self, device):
        return SimpleNamespace(
            name="Fake GPU",
            total_memory=80 << 30,
            major=9,
            minor=0,
            multi_processor_count=132,
            gcnArchName="gfx942:sramecc+:xnack-",
        )


def fake_torch(hip: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(
        version=SimpleNamespace(hip=hip, cuda=None if hip else "12.8"),
        cuda=FakeAllocator(),
        xpu=FakeAllocator(),
        mps=SimpleNamespace(
            synchronize=lambda: None, empty_cache=lambda: None, driver_allocated_memory=lambda: 7
        ),
    )


@pytest.mark.parametrize(
    ("device", "hip", "kind"),
    [
        ("cpu", None, CpuBackend),
        ("meta", None, MetaBackend),
        ("cuda:1", None, CudaBackend),
        ("cuda:0", "6.2", RocmBackend),
        ("mps", None, MpsBackend),
        ("xpu:0", None, XpuBackend),
    ],
)
def test_the_factory_gives_each_device_kind_its_backend(device, hip, kind):
    assert type(open_backend(device, fake_torch(hip))) is kind


def test_an_unknown_device_kind_is_refused():
    with pytest.raises(ValueError, match="no device backend for 'tpu:0'"):
        open_backend("tpu:0", fake_torch())


def test_a_gpu_backend_synchronizes_resets_and_reads_its_own_device():
    torch = fake_torch()
    backend = open_backend("cuda:1", torch)
    backend.synchronize()
    backend.reset_peaks()
    assert backend.peaks() == {
        "peak_mem_allocated_bytes": 3 << 30,
        "peak_mem_reserved_bytes": 4 << 30,
    }
    assert torch.cuda.calls == [("synchronize", "cuda:1"), ("reset", "cuda:1")]
    assert backend.facts() == {
        "id": "cuda:1",
        "kind": "cuda",
        "backend": "cuda",
        "name": "Fake GPU",
        "memory_bytes": 80 << 30,
        "compute_capability": "9.0",
        "multiprocessors": 132,
    }
    assert open_backend("cuda:0", fake_torch("6.2")).facts()["gfx_arch"] == "gfx942"


def test_devices_without_peak_counters_say_not_measured_never_zero():
    torch = fake_torch()
    assert open_backend("cpu", torch).peaks() == {
        "peak_mem_allocated_bytes": None,
        "peak_mem_reserved_bytes": None,
    }
    assert open_backend("mps", torch).peaks()["peak_mem_reserved_bytes"] == 7


def test_the_cpu_timer_measures_the_call_in_milliseconds():
    backend = open_backend("cpu", fake_torch())
    seen = []
    elapsed_ms = backend.time_ms(lambda: seen.append(1))
    assert seen == [1] and 0.0 <= elapsed_ms < 1000.0


def test_detection_lists_each_accelerator_with_its_backend_facts(monkeypatch):
    from sdbench.devices import detect

    torch = fake_torch()
    torch.cuda.is_available = lambda: True
    torch.cuda.device_count = lambda: 2
    torch.xpu.is_available = lambda: False
    torch.backends = SimpleNamespace(mps=SimpleNamespace(is_available=lambda: False))
    monkeypatch.setattr(detect, "torch", torch)
    devices = detect.list_devices()
    assert [d["id"] for d in devices] == ["cpu", "cuda:0", "cuda:1"]
    assert devices[1]["name"] == "Fake GPU" and devices[1]["backend"] == "cuda"
    assert devices[2]["memory_bytes"] == 80 << 30 and devices[2]["compute_capability"] == "9.0"


class CountingDetection:
    """Stands in for subprocess.run: counts detections and answers with the CUDA_VISIBLE_DEVICES seen."""

    def __init__(self):
        self.calls = 0

    def __call__(self, command, **kwargs):
        import os

        self.calls += 1
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        gpus = [
            {"id": f"cuda:{i}", "kind": "cuda"}
            for i, _ in enumerate(filter(None, visible.split(",")))
        ]
        return SimpleNamespace(
            returncode=0, stdout=json.dumps([{"id": "cpu", "kind": "cpu"}, *gpus])
        )


@pytest.fixture
def counting_detection(monkeypatch):
    import sdbench.devices as devices

    detection = CountingDetection()
    monkeypatch.setattr(devices.subprocess, "run", detection)
    devices.forget_detected_devices()
    yield detection
    devices.forget_detected_devices()


def test_a_process_detects_devices_once_while_the_device_variables_stay_the_same(
    counting_detection, monkeypatch
):
    from sdbench.devices import present_devices

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    first = present_devices()
    first.append({"id": "changed by a caller"})
    monkeypatch.setenv("SDBENCH_INJECT", "{}")  # not a device variable: no new detection
    assert present_devices() == [{"id": "cpu", "kind": "cpu"}, {"id": "cuda:0", "kind": "cuda"}]
    assert counting_detection.calls == 1


def test_changing_a_device_variable_detects_again(counting_detection, monkeypatch):
    from sdbench.devices import present_devices

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert [d["id"] for d in present_devices()] == ["cpu", "cuda:0"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert [d["id"] for d in present_devices()] == ["cpu", "cuda:0", "cuda:1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert [d["id"] for d in present_devices()] == ["cpu", "cuda:0"]
    assert counting_detection.calls == 2


def test_a_failed_detection_is_not_remembered(counting_detection, monkeypatch):
    import sdbench.devices as devices
    from sdbench.errors import DeviceError

    failing = SimpleNamespace(returncode=1, stdout="", stderr="ModuleNotFoundError: torch")
    monkeypatch.setattr(devices.subprocess, "run", lambda *a, **k: failing)
    with pytest.raises(DeviceError, match="ModuleNotFoundError: torch"):
        devices.present_devices()
    monkeypatch.setattr(devices.subprocess, "run", counting_detection)
    assert devices.present_devices()[0]["id"] == "cpu"
