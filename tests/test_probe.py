"""Device peak probe: cache keys and reuse, the real CPU kernels at a tiny size, datasheet lookup,
MFU and energy-per-image arithmetic, and the `sdbench probe` verb end to end."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import psutil
import pytest
from cells import cpu_cell

from sdbench.cell import Cell
from sdbench.commands.probe import render
from sdbench.devices import probe as probe_module
from sdbench.runner.derived import derived_figures, energy_per_image_j, peak_figures

TINY_BUDGET = {"matmul_s": 0.05, "call_s": 0.05, "gauge_n": 64, "max_n": 128, "copy_bytes": 2**20}


def test_cache_path_lives_in_xdg_cache_home_and_separates_devices_and_threads(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    a = probe_module.cache_path("NVIDIA H100 80GB HBM3", "2.13.0", None)
    b = probe_module.cache_path("NVIDIA H100 80GB HBM3", "2.12.0", None)
    c = probe_module.cache_path("AMD EPYC", "2.13.0", 2)
    d = probe_module.cache_path("AMD EPYC", "2.13.0", 4)
    assert a.parent == tmp_path / "sdbench"
    assert a.name.startswith("probe-NVIDIA-H100-80GB-HBM3-")
    assert len({a, b, c, d}) == 4


def test_cache_dir_defaults_to_home_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert probe_module.cache_dir() == tmp_path / ".cache" / "sdbench"


def test_load_or_probe_measures_once_then_reads_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    measured = []

    def fake_measure(device: str) -> dict:
        measured.append(device)
        return {
            "device": device,
            "device_name": "x",
            "matmul_tflops": {"fp32": 1.5 + len(measured)},
        }

    monkeypatch.setattr(probe_module, "measure_peaks", fake_measure)
    first = probe_module.load_or_probe("cpu")
    second = probe_module.load_or_probe("cpu")
    assert measured == ["cpu"]
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["matmul_tflops"] == {"fp32": 2.5}
    third = probe_module.load_or_probe("cpu", refresh=True)
    assert measured == ["cpu", "cpu"] and third["matmul_tflops"] == {"fp32": 3.5}


def test_a_damaged_or_unwritable_cache_only_costs_a_new_measurement(tmp_path, monkeypatch):
    monkeypatch.setattr(
        probe_module, "measure_peaks", lambda device: {"device_name": "x", "matmul_tflops": {}}
    )
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(not_a_folder))
    assert probe_module.load_or_probe("cpu")["cached"] is False
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    probe_module.load_or_probe("cpu")
    (cached,) = (tmp_path / "sdbench").glob("probe-*.json")
    cached.write_text("{not json")
    assert probe_module.load_or_probe("cpu")["cached"] is False


def test_cpu_matmul_and_copy_kernels_give_finite_positive_rates():
    torch = pytest.importorskip("torch")
    for precision in ("fp32", "bf16"):
        tflops = probe_module._matmul_tflops(torch, "cpu", precision, TINY_BUDGET)
        assert 0 < tflops < 50  # no 2026 CPU does 50 dense TFLOP/s at n=128
    bandwidth = probe_module._copy_bandwidth_gbs(torch, "cpu", TINY_BUDGET)
    assert 0 < bandwidth < 5000


def test_cpu_offers_no_tf32_or_fp8_and_says_why():
    torch = pytest.importorskip("torch")
    support = probe_module._precision_support(torch, "cpu")
    assert support["fp32"] is None and support["bf16"] is None
    assert "compute capability" in support["tf32"] and "compute capability" in support["fp8"]


def test_datasheet_peaks_come_from_the_catalogue_for_known_gpus_only():
    from sdbench.gpus import find_gpu

    gpu = find_gpu("NVIDIA H100 80GB HBM3")
    peaks = probe_module.datasheet_tflops("NVIDIA H100 80GB HBM3", "cuda")
    assert peaks["fp16"] == gpu.fp16_tensor_tflops
    assert peaks["fp32"] == gpu.fp32_tflops
    assert peaks["tf32"] == gpu.peak_tflops("tf32")
    assert probe_module.datasheet_tflops("AMD EPYC", "cpu") == {}
    assert probe_module.datasheet_tflops("Imaginary Accelerator 9000", "cuda") == {}


def _cell(stage: str, precision: str = "fp32", batch_size: int = 2, steps: int = 20) -> Cell:
    return cpu_cell("tiny", stage, precision=precision, batch_size=batch_size, steps=steps)


def _state(**probe) -> SimpleNamespace:
    return SimpleNamespace(probe=probe)


def test_mfu_is_achieved_over_probed_peak_in_the_cells_precision():
    state = _state(
        matmul_tflops={"fp32": 0.5, "bf16": 2.0}, datasheet_tflops={}, bandwidth_gbs=20.0
    )
    # 1e12 flops in 1 s = 1 TFLOP/s
    figures = derived_figures(_cell("unet", "bf16"), 0, 1000.0, 10**12, state)
    assert figures["tflops_per_s"] == pytest.approx(1.0)
    assert figures["peak_tflops"] == 2.0
    assert figures["mfu"] == pytest.approx(0.5)
    assert figures["peak_bandwidth_gbps"] == 20.0
    assert figures["datasheet_tflops"] is None


def test_tf32_cells_on_a_device_without_tf32_are_held_to_the_fp32_peak():
    figures = peak_figures("tf32", 0.25, _state(matmul_tflops={"fp32": 0.5}))
    assert figures["peak_tflops"] == 0.5 and figures["mfu"] == pytest.approx(0.5)
    assert peak_figures("fp8", 0.25, _state(matmul_tflops={"fp32": 0.5}))["mfu"] is None


def test_no_probe_means_null_peaks_not_zero():
    figures = peak_figures("fp32", 1.0, None)
    assert figures == {
        "peak_tflops": None,
        "mfu": None,
        "datasheet_tflops": None,
        "peak_bandwidth_gbps": None,
    }


def test_energy_per_image_follows_what_one_call_of_each_stage_makes():
    # unet: 10 calls of one step for 2 images; 20 steps an image -> 3 J/call * 20 / 2
    assert energy_per_image_j(_cell("unet"), 0, 30.0, 10) == pytest.approx(30.0)
    assert energy_per_image_j(_cell("vae_decode"), 2, 30.0, 10) == pytest.approx(1.5)
    assert energy_per_image_j(_cell("pipeline"), 2, 30.0, 10) == pytest.approx(1.5)
    assert energy_per_image_j(_cell("text_encoder"), 0, 30.0, 10) is None
    assert energy_per_image_j(_cell("unet"), 0, None, 10) is None


PROBE = {
    "device": "cuda:0",
    "device_name": "NVIDIA H100 80GB HBM3",
    "torch": "2.13.0",
    "threads": None,
    "matmul_tflops": {"fp32": 51.0, "fp16": 600.0},
    "datasheet_tflops": {"fp32": 67.0, "fp16": 989.4},
    "skipped": {"fp8": "fp8 matmul needs ..."},
    "bandwidth_gbs": 2900.0,
    "load_1m": 0.2,
    "logical_cpus": 16,
    "cached": True,
    "probed_at": "2026-11-25T00:00:00+00:00",
    "cache_path": "/c/probe.json",
}


def test_render_shows_each_precision_against_its_datasheet_and_the_bandwidth():
    text = render(PROBE)
    assert "fp16       600" in text and "989" in text and "61%" in text
    assert "copy bandwidth: 2900.0 GB/s" in text
    assert "fp8: not probed" in text
    assert "busy" not in text
    assert "busy while probing (load 12.0 on 2 CPUs)" in render(
        {**PROBE, "load_1m": 12.0, "logical_cpus": 2}
    )


def test_probe_verb_reads_the_cached_figures_through_the_worker_process(
    tmp_path, run_cli, monkeypatch
):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch, "get_num_threads", lambda: psutil.cpu_count(logical=False))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    name = probe_module.device_name(torch, "cpu")
    path = probe_module.cache_path(name, torch.__version__, torch.get_num_threads())
    path.parent.mkdir(parents=True)
    written = {"device_name": name, "torch": torch.__version__, "matmul_tflops": {"fp32": 0.123}}
    path.write_text(json.dumps({**written, "bandwidth_gbs": 9.5}))
    code, out, err = run_cli(
        "probe", "--device", "cpu", "--json", env={"XDG_CACHE_HOME": str(tmp_path)}
    )
    assert code == 0, err
    answer = json.loads(out)
    assert answer["cached"] is True
    assert answer["matmul_tflops"] == {"fp32": 0.123} and answer["bandwidth_gbs"] == 9.5
    assert answer["datasheet_tflops"] == {}


def test_probe_verb_on_an_absent_device_exits_2_with_a_message(run_cli):
    code, out, err = run_cli("probe", "--device", "cuda:7")
    assert code == 2
    assert "not present" in err and "Traceback" not in err


@pytest.mark.slow
def test_a_real_cpu_probe_measures_fp32_and_bandwidth(tmp_path, run_cli):
    code, out, err = run_cli(
        "probe", "--device", "cpu", "--json", env={"XDG_CACHE_HOME": str(tmp_path)}
    )
    assert code == 0, err
    answer = json.loads(out)
    assert answer["cached"] is False
    assert math.isfinite(answer["matmul_tflops"]["fp32"]) and answer["matmul_tflops"]["fp32"] > 0
    assert answer["bandwidth_gbs"] > 0


def test_a_probe_cached_on_an_overloaded_machine_is_redone_once_it_is_calmer(monkeypatch):
    from sdbench.devices import probe

    monkeypatch.setattr(probe.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(probe.os, "getloadavg", lambda: (1.0, 1.0, 1.0))
    assert probe._taken_busier_than_now({"load_1m": 11.4})
    assert not probe._taken_busier_than_now({"load_1m": 1.5})
    monkeypatch.setattr(probe.os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    assert not probe._taken_busier_than_now({"load_1m": 11.4})  # still busy: keep the cache


def test_conv_probe_measures_a_positive_rate_and_mfu_divides_by_the_faster_kernel():
    import torch

    from sdbench.devices import probe
    from sdbench.runner.derived import peak_figures

    budget = {"matmul_s": 0.0, "call_s": 0.0}  # smallest size, one timed repeat
    assert probe._conv_tflops(torch, "cpu", "fp32", budget) > 0

    class State:
        probe = {"matmul_tflops": {"fp32": 0.2}, "dense_tflops": {"fp32": 0.5}}

    figures = peak_figures("fp32", 0.25, State())
    assert figures["peak_tflops"] == 0.5 and figures["mfu"] == 0.5
