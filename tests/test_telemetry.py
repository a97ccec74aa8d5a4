"""Telemetry backends against scripted NVML / AMD SMI / psutil answers and a fake RAPL sysfs.

The fakes stand in for the vendor modules, which the backends take as a parameter: the code that
reads real hardware is the code under test. Values are scripted in each library's own units
(NVML: mW, mJ, MHz, bytes), not recorded from a device.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path
from types import SimpleNamespace

import pytest

import sdbench.telemetry as telemetry_package
from sdbench.errors import SdbenchError
from sdbench.quality import telemetry_warnings
from sdbench.telemetry import CombinedTelemetry, NullTelemetry, TelemetryError, open_telemetry
from sdbench.telemetry.amd import AmdSmiTelemetry
from sdbench.telemetry.base import Sampler, integrate_j
from sdbench.telemetry.cpu import CpuTelemetry, busy_percent
from sdbench.telemetry.nvidia import NvmlTelemetry, decode_clock_event_reasons
from sdbench.telemetry.rapl import RaplCounter, package_zones, unwrapped_delta_uj


class Clock:
    """Returns the scripted times in order, then keeps returning the last one."""

    def __init__(self, *times_s: float):
        self.times_s = list(times_s)

    def __call__(self) -> float:
        return self.times_s.pop(0) if len(self.times_s) > 1 else self.times_s[0]


class FakeNvmlError(Exception):
    def __init__(self, value: int):
        super().__init__(value)
        self.value = value


def fake_nvml(**scripts):
    """A pynvml stand-in. Each script is a list of answers (the last repeats) or an error code.

    Every query is answered once when the backend opens (to learn what is supported), then once
    per sample.
    """
    calls: dict[str, int] = {}

    def answer(name: str):
        def query(*args):
            script = scripts[name]
            if isinstance(script, int):
                raise FakeNvmlError(script)
            index = calls.get(name, 0)
            calls[name] = index + 1
            value = script[min(index, len(script) - 1)]
            if isinstance(value, FakeNvmlError):
                raise value
            return value

        query.__name__ = name
        return query

    module = SimpleNamespace(
        NVMLError=FakeNvmlError,
        NVML_ERROR_NOT_SUPPORTED=3,
        NVML_ERROR_NO_PERMISSION=4,
        NVML_ERROR_FUNCTION_NOT_FOUND=13,
        NVML_CLOCK_SM=1,
        NVML_CLOCK_MEM=2,
        NVML_TEMPERATURE_GPU=0,
        calls=calls,
        opened_by=[],
        shut_down=[],
    )
    module.nvmlInit = answer("nvmlInit") if "nvmlInit" in scripts else lambda: None
    module.nvmlShutdown = lambda: module.shut_down.append(True)
    module.nvmlDeviceGetHandleByIndex = lambda i: module.opened_by.append(("index", i)) or "gpu"
    module.nvmlDeviceGetHandleByUUID = lambda u: module.opened_by.append(("uuid", u)) or "gpu"
    module.nvmlDeviceGetMaxClockInfo = lambda handle, kind: scripts.get("max_sm_mhz", 1980)
    module.nvmlDeviceGetClockInfo = lambda handle, kind: (
        answer("sm_mhz") if kind == 1 else answer("mem_mhz")
    )()
    module.nvmlDeviceGetTemperature = lambda handle, sensor: answer("temp_c")()
    module.nvmlDeviceGetPowerUsage = lambda handle: answer("power_mw")()
    module.nvmlDeviceGetTotalEnergyConsumption = lambda handle: answer("energy_mj")()
    module.nvmlDeviceGetMemoryInfo = lambda handle: SimpleNamespace(used=answer("mem_used")())
    reasons = lambda handle: answer("reasons")()  # noqa: E731
    if scripts.get("old_reasons_api"):
        module.nvmlDeviceGetCurrentClocksThrottleReasons = reasons
    else:
        module.nvmlDeviceGetCurrentClocksEventReasons = reasons
    return module


H100_IDLE_TO_BUSY = dict(
    # open, start, stop
    energy_mj=[5_000_000, 5_000_000, 5_690_000],
    power_mw=[70_000, 690_000, 700_000],
    temp_c=[35, 61, 66],
    sm_mhz=[345, 1980, 1755],
    mem_mhz=[2619, 2619, 2619],
    mem_used=[600 << 20, 9_000 << 20, 9_500 << 20],
    reasons=[0x1, 0x0, 0x4],
)


def test_nvml_energy_comes_from_the_total_energy_counter_over_the_window():
    nvml = fake_nvml(**H100_IDLE_TO_BUSY)
    backend = NvmlTelemetry(nvml=nvml, hz=0, clock=Clock(10.0, 10.0, 11.0, 11.0))
    backend.start()
    columns = backend.stop()
    assert columns["energy_j"] == pytest.approx(690.0)
    assert columns["avg_power_w"] == pytest.approx(690.0)
    assert columns["energy_source"] == "counter"
    assert columns["telemetry_window_s"] == pytest.approx(1.0)
    assert columns["max_power_w"] == pytest.approx(700.0)
    assert columns["max_temp_c"] == 66
    assert columns["sm_clock_mhz"] == pytest.approx((1980 + 1755) / 2)
    assert columns["sm_clock_max_mhz"] == 1980
    assert columns["mem_clock_mhz"] == pytest.approx(2619)
    assert columns["peak_mem_device_bytes"] == 9_500 << 20
    assert columns["throttle_reasons"] == "sw_power_cap"


def test_nvml_window_shorter_than_the_counter_period_gives_no_energy_and_a_warning():
    nvml = fake_nvml(**H100_IDLE_TO_BUSY)
    backend = NvmlTelemetry(nvml=nvml, hz=0, clock=Clock(0.0, 0.0, 0.2, 0.2))
    backend.start()
    columns = backend.stop()
    assert columns["energy_j"] is None and columns["avg_power_w"] is None
    assert columns["telemetry_window_s"] == pytest.approx(0.2)
    warnings = telemetry_warnings(columns)
    assert any("energy not recorded" in w and "0.20 s" in w for w in warnings)


def test_nvml_without_energy_counter_integrates_sampled_power():
    nvml = fake_nvml(**{**H100_IDLE_TO_BUSY, "energy_mj": 3, "power_mw": [0, 200_000, 300_000]})
    backend = NvmlTelemetry(nvml=nvml, hz=0, clock=Clock(0.0, 0.0, 6.0, 6.0))
    backend.start()
    columns = backend.stop()
    assert "energy_mj" not in backend.readers
    assert columns["energy_source"] == "integrated power"
    assert columns["energy_j"] == pytest.approx(6.0 * (200 + 300) / 2)
    assert columns["avg_power_w"] == pytest.approx(250.0)


def test_nvml_unsupported_queries_leave_their_columns_null():
    nvml = fake_nvml(
        **{**H100_IDLE_TO_BUSY, "energy_mj": 3, "power_mw": 3, "temp_c": 3, "reasons": 13}
    )
    backend = NvmlTelemetry(nvml=nvml, hz=0, clock=Clock(0.0, 0.0, 2.0, 2.0))
    backend.start()
    columns = backend.stop()
    assert columns.get("energy_j") is None
    assert columns["max_power_w"] is None and columns["max_temp_c"] is None
    assert "throttle_reasons" not in columns  # not measured, which is not "none seen"
    assert columns["sm_clock_mhz"] == pytest.approx((1980 + 1755) / 2)


def test_nvml_throttle_reasons_accumulate_over_samples_and_skip_gpu_idle():
    nvml = fake_nvml(**{**H100_IDLE_TO_BUSY, "reasons": [0, 0x1 | 0x4, 0x40 | 0x1]})
    backend = NvmlTelemetry(nvml=nvml, hz=0, clock=Clock(0.0))
    backend.start()
    assert backend.stop()["throttle_reasons"] == "sw_power_cap,hw_thermal_slowdown"


def test_nvml_before_12_2_reads_the_old_throttle_reasons_query():
    nvml = fake_nvml(**{**H100_IDLE_TO_BUSY, "old_reasons_api": True, "reasons": [0, 0, 0x20]})
    backend = NvmlTelemetry(nvml=nvml, hz=0, clock=Clock(0.0))
    backend.start()
    assert backend.stop()["throttle_reasons"] == "sw_thermal_slowdown"


def test_decode_clock_event_reasons_names_every_slowdown_bit():
    assert decode_clock_event_reasons(0) == []
    assert decode_clock_event_reasons(0x1) == []
    assert decode_clock_event_reasons(0x8 | 0x80) == ["hw_slowdown", "hw_power_brake_slowdown"]


def test_nvml_opens_the_gpu_by_uuid_when_given():
    nvml = fake_nvml(**H100_IDLE_TO_BUSY)
    NvmlTelemetry(uuid="GPU-1234", nvml=nvml, hz=0)
    assert nvml.opened_by == [("uuid", "GPU-1234")]


def test_nvml_init_failure_is_an_sdbench_error():
    nvml = fake_nvml(**{**H100_IDLE_TO_BUSY, "nvmlInit": 12})  # library not found
    with pytest.raises(TelemetryError, match="nvmlInit") as caught:
        NvmlTelemetry(nvml=nvml, hz=0)
    assert isinstance(caught.value, SdbenchError)


def test_nvml_gpu_lost_during_the_window_raises_at_stop():
    lost = FakeNvmlError(15)
    nvml = fake_nvml(**{**H100_IDLE_TO_BUSY, "sm_mhz": [1980, 1980, lost]})
    backend = NvmlTelemetry(nvml=nvml, hz=0, clock=Clock(0.0))
    backend.start()
    with pytest.raises(TelemetryError, match="while reading sm_mhz"):
        backend.stop()


def test_the_real_pynvml_without_a_driver_raises_telemetry_error_not_a_crash():
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        pytest.skip("an NVIDIA driver is present here")
    except pynvml.NVMLError:
        pass
    with pytest.raises(TelemetryError):
        NvmlTelemetry(nvml=pynvml)


def test_sampler_thread_samples_at_its_rate_and_brackets_the_window():
    nvml = fake_nvml(**H100_IDLE_TO_BUSY)
    backend = NvmlTelemetry(nvml=nvml, hz=50)
    backend.start()
    time.sleep(0.3)
    backend.stop()
    samples = backend.sampler.samples
    assert 6 <= len(samples) <= 20  # 0.3 s at 50 Hz plus the start and stop samples
    times = [s.t_s for s in samples]
    assert times == sorted(times)


def test_sampler_error_in_its_thread_surfaces_at_stop():
    reads = iter([{}, {}])

    def read() -> dict:
        try:
            return next(reads)
        except StopIteration:
            raise TelemetryError("sensor went away") from None

    sampler = Sampler(read, hz=100)
    sampler.start()
    time.sleep(0.1)
    with pytest.raises(TelemetryError, match="sensor went away"):
        sampler.stop()


def test_integrate_j_is_the_trapezoid_rule():
    assert integrate_j([(0.0, 100.0), (1.0, 300.0), (3.0, 300.0)]) == pytest.approx(800.0)
    assert integrate_j([(0.0, 100.0)]) is None


# --- AMD SMI -------------------------------------------------------------------------------


class FakeAmdSmiError(Exception):
    pass


def fake_amdsmi(energy_ticks: list[int], key: str = "energy_accumulator", power=None):
    ticks = iter(energy_ticks + [energy_ticks[-1]] * 10)
    enum = SimpleNamespace
    return SimpleNamespace(
        AmdSmiException=FakeAmdSmiError,
        AmdSmiClkType=enum(GFX="gfx", MEM="mem"),
        AmdSmiTemperatureType=enum(HOTSPOT="hotspot"),
        AmdSmiTemperatureMetric=enum(CURRENT="current"),
        AmdSmiMemoryType=enum(VRAM="vram"),
        amdsmi_init=lambda: None,
        amdsmi_shut_down=lambda: None,
        amdsmi_get_processor_handles=lambda: ["gpu0", "gpu1"],
        amdsmi_get_energy_count=lambda h: {key: next(ticks), "counter_resolution": 15.3},
        amdsmi_get_power_info=lambda h: (
            power
            or {"socket_power": "N/A", "current_socket_power": 550, "average_socket_power": "N/A"}
        ),
        amdsmi_get_temp_metric=lambda h, sensor, metric: 71,
        amdsmi_get_clock_info=lambda h, kind: (
            {"clk": 2100, "max_clk": 2100} if kind == "gfx" else {"clk": 1300, "max_clk": 1300}
        ),
        amdsmi_get_gpu_memory_usage=lambda h, kind: 20 << 30,
    )


@pytest.mark.parametrize("key", ["energy_accumulator", "power"])
def test_amdsmi_energy_is_ticks_times_resolution_under_either_key(key):
    smi = fake_amdsmi([1000, 1000, 1000 + 65_360], key=key)
    backend = AmdSmiTelemetry(index=1, amdsmi=smi, hz=0, clock=Clock(0.0, 0.0, 2.0, 2.0))
    backend.start()
    columns = backend.stop()
    assert columns["energy_j"] == pytest.approx(65_360 * 15.3 / 1e6)
    assert columns["max_power_w"] == 550
    assert columns["max_temp_c"] == 71
    assert columns["sm_clock_mhz"] == 2100 and columns["sm_clock_max_mhz"] == 2100
    assert columns["peak_mem_device_bytes"] == 20 << 30


def test_amdsmi_missing_gpu_index_is_an_sdbench_error():
    with pytest.raises(TelemetryError, match="sees 2 GPUs"):
        AmdSmiTelemetry(index=5, amdsmi=fake_amdsmi([0]), hz=0)


# --- RAPL and CPU --------------------------------------------------------------------------


def write_zone(root: Path, folder: str, name: str, energy_uj: int, max_uj: int = 1_000_000):
    zone = root / folder
    zone.mkdir(parents=True, exist_ok=True)
    (zone / "name").write_text(name + "\n")
    (zone / "energy_uj").write_text(f"{energy_uj}\n")
    (zone / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return zone


def test_rapl_reads_package_zones_only(tmp_path):
    write_zone(tmp_path, "intel-rapl:0", "package-0", 10)
    write_zone(tmp_path, "intel-rapl:0:0", "core", 5)
    write_zone(tmp_path, "intel-rapl:1", "package-1", 20)
    write_zone(tmp_path, "intel-rapl:2", "psys", 30)
    assert [z.name for z in package_zones(tmp_path)] == ["package-0", "package-1"]


def test_rapl_unreadable_counter_means_no_zone(tmp_path):
    zone = write_zone(tmp_path, "intel-rapl:0", "package-0", 10)
    (zone / "energy_uj").unlink()
    (zone / "energy_uj").mkdir()  # reading fails with OSError, as a root-only file does
    assert package_zones(tmp_path) == []
    assert package_zones(tmp_path / "absent") == []


def test_rapl_counter_unwraps_at_max_energy_range():
    assert unwrapped_delta_uj(100, 350, 1_000_000) == 250
    assert unwrapped_delta_uj(999_900, 50, 1_000_000) == 151  # 999_900 -> 1_000_000 -> 0 -> 50


def test_rapl_counter_sums_sockets_across_a_wrap(tmp_path):
    zone0 = write_zone(tmp_path, "intel-rapl:0", "package-0", 999_000)
    zone1 = write_zone(tmp_path, "intel-rapl:1", "package-1", 5_000)
    counter = RaplCounter(package_zones(tmp_path))
    counter.reset()
    (zone0 / "energy_uj").write_text("2000\n")  # wrapped: 1001 + 2000 uJ
    (zone1 / "energy_uj").write_text("7000\n")
    assert counter.update() == pytest.approx((1_001 + 2_000 + 2_000) / 1e6)


CpuTimes = namedtuple("CpuTimes", "user nice system idle iowait irq softirq steal guest guest_nice")


def fake_psutil(times: list[CpuTimes], freq_mhz: float | None = 2600.0):
    answers = iter(times)
    return SimpleNamespace(
        cpu_times=lambda: next(answers),
        cpu_freq=lambda: SimpleNamespace(current=freq_mhz, min=0.0, max=0.0) if freq_mhz else None,
    )


def test_busy_percent_counts_everything_but_idle_and_iowait():
    before = CpuTimes(10, 0, 5, 80, 5, 0, 0, 0, 0, 0)
    after = CpuTimes(40, 0, 15, 120, 5, 0, 0, 0, 0, 0)  # 40 busy, 40 idle
    assert busy_percent(before, after) == pytest.approx(50.0)
    assert busy_percent(before, before) is None


def test_cpu_telemetry_with_rapl_records_energy_and_utilisation(tmp_path):
    zone = write_zone(tmp_path, "intel-rapl:0", "package-0", 1_000, max_uj=10**12)
    psutil = fake_psutil(
        [CpuTimes(0, 0, 0, 100, 0, 0, 0, 0, 0, 0), CpuTimes(150, 0, 30, 120, 0, 0, 0, 0, 0, 0)]
    )
    backend = CpuTelemetry(
        psutil_module=psutil,
        rapl=RaplCounter(package_zones(tmp_path)),
        hz=0,
        clock=Clock(0.0, 0.0, 2.0, 2.0),
    )
    backend.start()
    (zone / "energy_uj").write_text(f"{1_000 + 90_000_000}\n")  # 90 J in 2 s
    columns = backend.stop()
    assert backend.name == "psutil+rapl"
    assert columns["energy_j"] == pytest.approx(90.0)
    assert columns["avg_power_w"] == pytest.approx(45.0)
    assert columns["max_power_w"] == pytest.approx(45.0)
    assert columns["energy_source"] == "rapl"
    assert columns["cpu_util_pct"] == pytest.approx(100 * 180 / 200)
    assert columns["cpu_freq_mhz"] == pytest.approx(2600.0)


def test_cpu_telemetry_without_rapl_or_frequency_leaves_them_null():
    psutil = fake_psutil([CpuTimes(*[0] * 10), CpuTimes(1, 0, 0, 1, 0, 0, 0, 0, 0, 0)], None)
    backend = CpuTelemetry(psutil_module=psutil, hz=0)
    backend.start()
    columns = backend.stop()
    assert backend.name == "psutil"
    assert "energy_j" not in columns and columns["cpu_freq_mhz"] is None
    assert columns["cpu_util_pct"] == pytest.approx(50.0)
    assert telemetry_warnings(columns) == []


# --- the factory ---------------------------------------------------------------------------


def test_open_telemetry_on_this_cpu_reads_psutil_and_never_invents_energy():
    backend = open_telemetry("cpu")
    backend.start()
    sum(i * i for i in range(200_000))
    columns = backend.stop()
    backend.close()
    assert columns["telemetry_backend"] in ("psutil", "psutil+rapl")
    assert columns["cpu_util_pct"] is None or 0 <= columns["cpu_util_pct"] <= 100
    if columns["telemetry_backend"] == "psutil":
        assert columns.get("energy_j") is None
    assert "telemetry_error" not in columns


def test_open_telemetry_uses_rapl_when_the_powercap_folder_is_readable(tmp_path, monkeypatch):
    write_zone(tmp_path, "intel-rapl:0", "package-0", 1_000)
    monkeypatch.setattr(telemetry_package, "POWERCAP", tmp_path)
    backend = open_telemetry("cpu")
    assert backend.name == "psutil+rapl"


def test_open_telemetry_for_a_gpu_torch_cannot_see_records_why_and_keeps_cpu_figures():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    backend = open_telemetry("cuda:0")
    backend.start()
    columns = backend.stop()
    assert "no GPU" in columns["telemetry_error"]
    assert columns["telemetry_backend"] == "psutil"
    assert any("no device power" in w for w in telemetry_warnings(columns))


def test_combined_telemetry_prefers_the_device_backend_on_shared_columns():
    class Fixed(NullTelemetry):
        def __init__(self, name: str, columns: dict):
            self.name, self.columns = name, columns

        def stop(self) -> dict:
            return dict(self.columns)

    combined = CombinedTelemetry(
        [
            Fixed("nvml", {"telemetry_window_s": 2.0, "energy_j": 5.0}),
            Fixed("psutil", {"telemetry_window_s": 1.9, "cpu_util_pct": 50.0}),
        ]
    )
    combined.start()
    columns = combined.stop()
    assert columns == {
        "telemetry_window_s": 2.0,
        "energy_j": 5.0,
        "cpu_util_pct": 50.0,
        "telemetry_backend": "nvml+psutil",
    }


def test_nvml_falls_back_to_the_index_when_the_uuid_is_unknown_and_allowed():
    nvml = fake_nvml(**H100_IDLE_TO_BUSY)

    def nvmlDeviceGetHandleByUUID(uuid):
        raise FakeNvmlError(6)  # not found

    nvml.nvmlDeviceGetHandleByUUID = nvmlDeviceGetHandleByUUID
    NvmlTelemetry(index=1, uuid="GPU-x", nvml=nvml, hz=0)
    assert nvml.opened_by == [("index", 1)]
    with pytest.raises(TelemetryError, match="ByUUID"):
        NvmlTelemetry(index=1, uuid="GPU-x", nvml=nvml, hz=0, index_fallback=False)


def test_nvml_driver_without_clocks_event_reasons_uses_the_throttle_reasons_query():
    nvml = fake_nvml(**{**H100_IDLE_TO_BUSY, "reasons": 13})  # new entry point: function not found
    nvml.nvmlDeviceGetCurrentClocksThrottleReasons = lambda handle: 0x40
    backend = NvmlTelemetry(nvml=nvml, hz=0, clock=Clock(0.0))
    backend.start()
    assert backend.stop()["throttle_reasons"] == "hw_thermal_slowdown"


def test_telemetry_smoke_check_module_reports_cpu_columns():
    result = subprocess.run(
        [sys.executable, "-m", "sdbench.telemetry", "cpu", "--seconds", "0.3"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["calls"] >= 1
    assert report["telemetry_backend"] in ("psutil", "psutil+rapl")
    assert 0.3 <= report["telemetry_window_s"] < 30
