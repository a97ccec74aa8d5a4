"""scripts/gpu-check: its suite, its CPU dry run end to end, and the checks that catch a GPU run
that silently fell back to the CPU, lost its telemetry or ran the wrong attention kernels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pandas as pd
import pytest

from sdbench.errors import BadInput, SdbenchError
from sdbench.gpucheck import run, suite, verify
from sdbench.suite import expand, load_suite, parse_suite
from tests.conftest import REPO

GPU = {"id": "cuda:0", "name": "NVIDIA H100 80GB HBM3"}
CPU_NAME = "AMD EPYC 9654"


def gpu_cells():
    return expand(load_suite(suite.GPU_SUITE), ["cpu", "cuda:0"])


def test_gpu_suite_runs_every_gpu_path_once():
    cells = gpu_cells()
    assert len(cells) == 54 and {c.device for c in cells} == {"cuda:0"}
    grid = {
        (c.batch_size, c.precision, c.attention)
        for c in cells
        if (c.model, c.stage, c.height, c.compile) == ("sd15", "unet", 512, "none")
    }
    attentions = ("sdpa", "flash", "efficient", "cudnn", "math")
    expected = {(b, p, a) for b in (1, 4, 8) for p in ("fp16", "bf16") for a in attentions}
    expected |= {(b, p, "sdpa") for b in (1, 4, 8) for p in ("fp32", "tf32")}
    assert grid == expected
    vae = {(c.height, c.precision) for c in cells if c.stage == "vae_decode"}
    assert vae == {(512, "fp16"), (1024, "fp16"), (512, "bf16"), (1024, "bf16")}
    assert [c.label() for c in cells if c.stage == "text_encoder"] == [
        "sd15 text_encoder 512x512 bs1 fp16 sdpa @ cuda:0"
    ]
    assert [c.label() for c in cells if c.model == "sdxl"] == [
        "sdxl unet 1024x1024 bs1 fp16 sdpa @ cuda:0"
    ]
    assert [c.label() for c in cells if c.compile != "none"] == [
        "sd15 unet 512x512 bs1 fp16 sdpa default @ cuda:0"
    ]
    planned = [c for c in cells if c.batch_size == suite.OOM_BATCH]
    assert [(c.model, c.height, c.precision) for c in planned] == [("sd15", 2048, "fp16")]


def test_gpu_suite_keeps_every_timed_window_long_enough_for_nvml_energy():
    measure = load_suite(suite.GPU_SUITE).measure
    assert measure.max_time_s >= 0.5  # telemetry/nvidia.py trusts the counter from 0.5 s
    assert measure.target_rel_ci == 0.0  # so no cell stops before max_time_s


def test_dry_run_suite_is_the_gpu_suite_on_the_cpu_with_the_tiny_model():
    text = suite.dry_run_suite_text(suite.GPU_SUITE.read_text())
    cells = expand(parse_suite(text, source="dry run"), ["cpu"])
    assert {(c.model, c.device, c.compile) for c in cells} == {("tiny", "cpu", "none")}

    def shape(c, divisor):
        return (c.stage, c.height // divisor, c.batch_size, c.precision, c.attention)

    gpu_sd15 = [c for c in gpu_cells() if c.model == "sd15" and c.compile == "none"]
    assert sorted(shape(c, 1) for c in cells) == sorted(shape(c, 8) for c in gpu_sd15)
    assert [c.height for c in cells if c.batch_size == suite.OOM_BATCH] == [256]


def ok_row(**overrides) -> dict:
    row = {
        "run_id": "r1",
        "model": "sd15",
        "stage": "unet",
        "device": "cuda:0",
        "device_name": GPU["name"],
        "cpu_model": CPU_NAME,
        "cuda": "13.0",
        "height": 512,
        "width": 512,
        "batch_size": 1,
        "precision": "fp16",
        "attention": "sdpa",
        "compile": "none",
        "status": "ok",
        "error": None,
        "median_ms": 40.0,
        "it_per_s": 25.0,
        "tflops_per_s": 40.0,
        "mfu": None,
        "peak_mem_allocated_bytes": 3e9,
        "peak_mem_reserved_bytes": 4e9,
        "telemetry_backend": "nvml+cpu",
        "telemetry_error": None,
        "telemetry_window_s": 0.62,
        "energy_min_window_s": 0.5,
        "energy_j": 180.0,
        "avg_power_w": 290.0,
        "sm_clock_mhz": 1980.0,
        "max_temp_c": 51.0,
        "energy_per_image_j": 5.6,
        "fidelity_ok": True,
    }
    return {**row, **overrides}


def planned_oom() -> dict:
    return ok_row(
        batch_size=suite.OOM_BATCH,
        height=2048,
        width=2048,
        status="oom",
        error="CUDA out of memory",
    )


def good_rows() -> list[dict]:
    compiled = ok_row(compile="default", compile_s=70.0)
    return [ok_row(), ok_row(attention="flash"), compiled, planned_oom()]


def failed(checks) -> dict[str, str]:
    return {c.name: c.detail for c in checks if not c.ok}


def test_gpu_suite_has_a_lever_slice_of_each_lever_alone_on_the_sd15_pipeline():
    levers = [
        " ".join(v for v in (c.memory, c.quant, c.cache) if v != "none")
        for c in gpu_cells()
        if c.stage == "pipeline"
    ]
    assert levers == [
        "", "deepcache:3", "model_offload", "sequential_offload", "vae_slicing+vae_tiling",
        "attention_slicing", "int8wo", "int8dq", "fp8dq", "nf4",
    ]  # fmt: skip


def test_lever_check_wants_offload_below_the_plain_peak_and_quant_within_tolerance():
    plain = ok_row(stage="pipeline", peak_mem_allocated_bytes=4e9)
    offload = ok_row(stage="pipeline", memory="model_offload", peak_mem_allocated_bytes=2e9)
    int8 = ok_row(stage="pipeline", quant="int8wo", ref_rel_err=0.02, fidelity_tolerance=0.1)
    nf4 = ok_row(stage="pipeline", quant="nf4", status="unsupported", error="no bitsandbytes")
    assert verify.lever_check([plain, offload, int8, nf4], cpu_dry_run=False).ok
    heavier = {**offload, "peak_mem_allocated_bytes": 5e9}
    broken = {**int8, "fidelity_ok": False, "ref_rel_err": 0.4}
    check = verify.lever_check([plain, heavier, broken], cpu_dry_run=False)
    assert not check.ok and "model_offload: peak" in check.detail
    assert "int8wo: fidelity 0.4 above 0.1" in check.detail


def test_verify_passes_a_healthy_gpu_run():
    assert failed(verify.verify_rows(good_rows(), GPU, cpu_dry_run=False, expected_cells=4)) == {}


def test_verify_fails_rows_that_ran_on_the_cpu_instead_of_the_gpu():
    rows = good_rows()
    rows[1] = ok_row(device_name=CPU_NAME)  # named after the host CPU: the GPU path fell back
    problems = failed(verify.verify_rows(rows, GPU, cpu_dry_run=False, expected_cells=4))
    assert list(problems) == ["ran on the device"]
    assert CPU_NAME in problems["ran on the device"]
    rows[1] = ok_row(device="cpu", device_name=CPU_NAME)
    assert "ran on the device" in failed(verify.verify_rows(rows, GPU, False, 4))


def test_verify_fails_when_nvml_did_not_answer_on_an_nvidia_gpu():
    rows = good_rows()
    rows[0] = ok_row(telemetry_backend="cpu", telemetry_error="NVIDIA telemetry needs nvidia-ml-py")
    rows[1] = ok_row(sm_clock_mhz=float("nan"))
    problems = failed(verify.verify_rows(rows, GPU, cpu_dry_run=False, expected_cells=4))
    assert list(problems) == ["NVML telemetry"]
    assert (
        "nvidia-ml-py" in problems["NVML telemetry"]
        and "null sm_clock_mhz" in problems["NVML telemetry"]
    )


def test_energy_may_be_null_only_when_the_window_was_too_short_to_trust():
    short = ok_row(telemetry_window_s=0.2, energy_j=None, avg_power_w=None)
    rows = [short, planned_oom(), ok_row(compile="default", compile_s=60.0)]
    assert failed(verify.verify_rows(rows, GPU, False, 3)) == {}
    rows[0] = ok_row(energy_j=None)  # a 0.62 s window without energy: the counter failed
    assert "null energy_j" in failed(verify.verify_rows(rows, GPU, False, 3))["NVML telemetry"]


def test_verify_fails_when_the_planned_oom_cell_fits_or_a_cell_errors():
    rows = good_rows()
    rows[3] = {**planned_oom(), "status": "ok"}
    rows[1] = ok_row(status="error", error="RuntimeError: CUDA error: an illegal memory access")
    problems = failed(verify.verify_rows(rows, GPU, cpu_dry_run=False, expected_cells=5))
    assert set(problems) == {"all cells", "no errors", "planned out-of-memory cell"}
    assert "illegal memory access" in problems["no errors"]


def test_verify_fails_a_compile_cell_that_did_not_run():
    rows = good_rows()
    rows[2] = ok_row(compile="default", status="unsupported", error="needs the triton package")
    assert "triton" in failed(verify.verify_rows(rows, GPU, False, 4))["torch.compile"]


def test_dry_run_relaxes_gpu_only_checks():
    rows = [
        ok_row(
            device="cpu",
            device_name=CPU_NAME,
            telemetry_backend="cpu",
            energy_j=None,
            peak_rss_bytes=5e8,
        ),
        {**planned_oom(), "device": "cpu"},
    ]
    cpu = {"id": "cpu", "name": CPU_NAME}
    assert failed(verify.verify_rows(rows, cpu, cpu_dry_run=True, expected_cells=2)) == {}


def test_kernel_check_fails_backends_that_ran_the_same_or_the_wrong_kernel():
    healthy = {
        "math": {"backends": ["math"], "mismatch": None},
        "flash": {"backends": ["flash"], "mismatch": None},
        "cudnn": {"unsupported": "cuDNN attention needs ..."},
    }
    [check] = verify.judge_kernels(healthy)
    assert (
        check.ok and "flash -> flash" in check.detail and "unsupported here: cudnn" in check.detail
    )
    fell_back = {
        **healthy,
        "efficient": {
            "backends": ["math"],
            "mismatch": "efficient attention ran ['math'], not efficient",
        },
    }
    [check] = verify.judge_kernels(fell_back)
    assert not check.ok
    assert (
        "not efficient" in check.detail
        and "efficient and math ran the same kernels" in check.detail
    )


def test_no_gpu_is_a_user_error_that_says_how_to_test_without_one():
    with pytest.raises(SdbenchError, match="--cpu-dry-run"):
        run.pick_device([{"id": "cpu", "name": CPU_NAME}], cpu_dry_run=False)
    assert run.pick_device([{"id": "cpu", "name": CPU_NAME}, GPU], False) == GPU


def test_output_folder_must_be_new_or_empty(tmp_path):
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(BadInput, match="not empty"):
        run.prepare_out_dir(tmp_path)
    run.prepare_out_dir(tmp_path / "new")
    assert (tmp_path / "new").is_dir()


def test_missing_packages_are_named_as_pip_installs_them(monkeypatch):
    monkeypatch.setattr(
        run, "REQUIRED_MODULES", {"json": "json", "sdbench_no_such_module": "no-such-dist"}
    )
    assert run.missing_packages() == ["no-such-dist"]


def test_summary_shows_figures_statuses_and_a_probe_based_mfu():
    probe = {"matmul_tflops": {"fp16": 800.0}}
    text = verify.summary_text(good_rows(), [verify.Check("probe", True, "ok")], GPU, probe, 12.0)
    line = next(x for x in text.splitlines() if x.startswith("sd15 unet 512x512 bs1 fp16 sdpa "))
    assert (
        "25" in line and "5.0%" in line and "3.73 GiB" in line and "5.6" in line and "pass" in line
    )
    assert "statuses: 3 ok, 1 oom" in text and text.rstrip().endswith("gpu-check passed")


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-check") / "out"
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "gpu-check"), str(out), "--cpu-dry-run"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO,
        env={**os.environ, "PYTHON": sys.executable},  # this Python, whatever .venv the clone has
    )
    return out, result


def test_cpu_dry_run_passes_end_to_end_through_the_wrapper(dry_run):
    out, result = dry_run
    assert result.returncode == 0, result.stderr[-3000:]
    files = sorted(p.name for p in out.rglob("*") if p.is_file())
    assert len(files) <= run.MAX_FILES, files
    assert {"index.html", "results.parquet", "results.csv", "summary.txt", "checks.json"} <= set(
        files
    )
    verdicts = json.loads((out / "checks.json").read_text())
    assert verdicts["passed"] is True
    assert set(verdicts["attention_kernels"]) == {"math", "flash"}
    assert "gpu-check passed" in (out / "summary.txt").read_text()


def test_cpu_dry_run_results_hold_every_cell_with_its_status(dry_run):
    out, _ = dry_run
    frame = pd.read_parquet(out / "results.parquet")
    assert len(frame) == 52 and set(frame["device"]) == {"cpu"}
    counts = Counter(frame["status"])
    assert counts["oom"] == 1 and counts["error"] == 0 and counts["ok"] >= 25
    planned = frame[frame["batch_size"] == suite.OOM_BATCH]
    assert list(planned["status"]) == ["oom"]
    ok = frame[frame["status"] == "ok"]
    assert (ok["median_ms"] > 0).all() and (ok["peak_rss_bytes"] > 0).all()
