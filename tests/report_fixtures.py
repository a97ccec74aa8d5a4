"""Synthetic result runs for report and `best` tests: a realistic mix of statuses, devices and knobs.

Every figure here is made up for tests (a simple formula per cell), never presented as measured.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from sdbench.store import SCHEMA_VERSION, write_run

HOSTILE = "<script>alert(1)</script>"
GPU_NAME = "Synthetic GPU 24GB"
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

# Relative speed of each knob: lower is faster (made-up factors for tests).
PRECISION_FACTOR = {"fp32": 1.0, "fp16": 0.5, "bf16": 0.55}
ATTENTION_FACTOR = {"sdpa": 1.0, "math": 1.3, "flash": 0.9}
COMPILE_FACTOR = {"none": 1.0, "default": 0.8}


def _environment(device: str) -> dict:
    return {
        "host": "testhost",
        "os": "Linux-6.1",
        "python": "3.11.2",
        "torch": "2.13.0",
        "diffusers": "0.36.0",
        "cuda": None if device == "cpu" else "12.8",
        "driver": None if device == "cpu" else "580.1",
        "cpu_model": "Test CPU",
        "gpu_count": 0 if device == "cpu" else 1,
        "sdbench_version": "0.1.0",
        "git_sha": "abc1234",
    }


def _timing(median_ms: float) -> dict:
    samples = [median_ms * f for f in (0.98, 0.99, 1.0, 1.01, 1.03)]
    return {
        "samples_ms": samples,
        "n_samples": len(samples),
        "warmup": 2,
        "median_ms": median_ms,
        "mean_ms": sum(samples) / len(samples),
        "std_ms": median_ms * 0.02,
        "iqr_ms": median_ms * 0.02,
        "ci95_low_ms": samples[0],
        "ci95_high_ms": samples[-1],
    }


def _row(
    run_id: str, suite: str, started_at: datetime, device: str, config: tuple, scale: float
) -> dict:
    model, stage, resolution, batch, precision, attention, compile_mode = config
    gpu = device != "cpu"
    base_ms = (
        (40.0 if gpu else 900.0)
        * (resolution / 256) ** 2
        * batch
        * (1.0 if stage == "unet" else 0.6)
    )
    median_ms = (
        base_ms
        * PRECISION_FACTOR[precision]
        * ATTENTION_FACTOR[attention]
        * COMPILE_FACTOR[compile_mode]
        * scale
    )
    flops = 1.0e11 * (resolution / 256) ** 2 * batch
    row = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "cell_id": f"{model}-{stage}-{device}-{resolution}-{batch}-{precision}-{attention}-{compile_mode}",
        "suite": suite,
        "started_at": started_at,
        "model": model,
        "stage": stage,
        "device": device,
        "device_name": GPU_NAME if gpu else "Test CPU",
        "height": resolution,
        "width": resolution,
        "batch_size": batch,
        "precision": precision,
        "attention": attention,
        "compile": compile_mode,
        "cfg": True,
        "steps": 20,
        "weights": "random",
        "status": "ok",
        "error": None,
        "warnings": [],
        **_environment(device),
    }
    row |= _timing(median_ms)
    row |= {
        "it_per_s": 1000.0 / median_ms if stage == "unet" else None,
        "images_per_s": 1000.0 * batch / median_ms,
        "flops": flops,
        "tflops_per_s": flops / (median_ms / 1000) / 1e12,
        "peak_tflops": 150.0 if gpu else 0.5,
        "mfu": flops / (median_ms / 1000) / 1e12 / (150.0 if gpu else 0.5),
        "peak_mem_reserved_bytes": int(2.0e9 * (resolution / 256) ** 2 * batch) if gpu else None,
        "peak_rss_bytes": int(8.0e8 * (resolution / 256) * batch) if not gpu else None,
        "energy_per_image_j": 300.0 * median_ms / 1000 / batch if gpu else None,
        "energy_j": 300.0 * median_ms / 1000 if gpu else None,
        "compile_s": 45.0 if compile_mode != "none" else None,
        "ref_rel_err": 0.0 if precision == "fp32" else 2e-3,
        "fidelity_ok": None if (precision == "fp32" and attention == "math") else True,
        "nonfinite": False,
    }
    return row


def _configs(device: str) -> list[tuple]:
    precisions = ["fp32", "bf16"] if device == "cpu" else ["fp32", "fp16", "bf16"]
    attentions = ["sdpa", "math"] if device == "cpu" else ["sdpa", "math", "flash"]
    return [
        (model, stage, resolution, batch, precision, attention, "none")
        for model, stage, resolution, batch, precision, attention in itertools.product(
            ["sd15"], ["unet", "vae_decode"], [256, 512], [1, 2], precisions, attentions
        )
    ] + [("sd15", "unet", 512, 1, "fp16" if device != "cpu" else "fp32", "sdpa", "default")]


def _mark_outcomes(rows: list[dict]) -> None:
    """Give a few cells each non-ok outcome, a fidelity failure and some warnings."""
    for row in rows:
        key = (
            row["device"],
            row["stage"],
            row["height"],
            row["batch_size"],
            row["precision"],
            row["attention"],
        )
        if key == ("cuda:0", "vae_decode", 512, 2, "fp32", "math"):
            _fail(row, "oom", "CUDA out of memory. Tried to allocate 4.00 GiB")
        elif key == ("cuda:0", "unet", 512, 2, "fp32", "flash"):
            _fail(row, "unsupported", "flash attention does not support fp32")
        elif key == ("cpu", "vae_decode", 512, 2, "bf16", "math"):
            _fail(row, "timeout", "cell exceeded cell_timeout_s=900")
        elif key == ("cpu", "unet", 512, 2, "bf16", "sdpa"):
            _fail(row, "error", "RuntimeError: synthetic <b>failure</b> & more")
        elif key == ("cuda:0", "unet", 256, 1, "fp16", "flash"):
            row["fidelity_ok"], row["ref_rel_err"] = (
                False,
                0.4,
            )  # fastest at this workload, but wrong
        elif key == ("cuda:0", "unet", 256, 2, "fp16", "flash"):
            row["nonfinite"], row["fidelity_ok"] = True, None
        if row["status"] == "ok" and row["device"] == "cpu" and row["height"] == 512:
            row["warnings"] = ["high spread: IQR/median 12%; use a quiet machine or more repeats"]
        if row["status"] == "ok" and row["compile"] != "none":
            row["warnings"] = ["2 recompiles during timing; shapes changed between calls"]


def _fail(row: dict, status: str, error: str) -> None:
    row["status"], row["error"] = status, error
    for name in (
        "samples_ms",
        "n_samples",
        "median_ms",
        "mean_ms",
        "std_ms",
        "iqr_ms",
        "ci95_low_ms",
    ):
        row[name] = [] if name == "samples_ms" else None
    for name in ("ci95_high_ms", "it_per_s", "images_per_s", "tflops_per_s", "mfu", "energy_j"):
        row[name] = None
    row["energy_per_image_j"] = row["peak_mem_reserved_bytes"] = row["peak_rss_bytes"] = None
    row["fidelity_ok"] = row["ref_rel_err"] = row["nonfinite"] = None


def synthetic_rows(
    run_id: str = "run-a",
    suite: str = "quick",
    started_at: datetime = START,
    scale: float = 1.0,
    devices: tuple[str, ...] = ("cpu", "cuda:0"),
) -> list[dict]:
    """One run's rows; `scale` multiplies every latency (to make a later run slower or faster)."""
    rows = [_row(run_id, suite, started_at, d, c, scale) for d in devices for c in _configs(d)]
    _mark_outcomes(rows)
    return rows


def write_synthetic_run(folder: Path, run_id: str = "run-a", **kwargs) -> Path:
    return write_run(synthetic_rows(run_id=run_id, **kwargs), Path(folder) / f"{run_id}.parquet")


def write_history(
    folder: Path, scales: tuple[float, ...] = (1.0, 1.0, 1.25, 1.25), suite: str = "quick"
) -> list[Path]:
    """Several runs of the same cells a day apart; the last two 25% slower by default."""
    return [
        write_synthetic_run(
            folder, f"run-{i}", suite=suite, started_at=START + timedelta(days=i), scale=scale
        )
        for i, scale in enumerate(scales)
    ]


TIMING_MS = ("median_ms", "mean_ms", "std_ms", "iqr_ms", "ci95_low_ms", "ci95_high_ms")


def cell_key(row: dict) -> tuple:
    """(device, stage, height, batch_size, precision, attention, compile) of a fixture row."""
    names = ("device", "stage", "height", "batch_size", "precision", "attention", "compile")
    return tuple(row[name] for name in names)


def only_row(table: pd.DataFrame, **match) -> pd.Series:
    """The one row of an analysis table whose columns hold the values in `match`."""
    rows = table
    for column, value in match.items():
        rows = rows[rows[column] == value]
    assert len(rows) == 1, f"{len(rows)} rows match {match}"
    return rows.iloc[0]


def scale_timing(row: dict, factor: float) -> dict:
    """The row with every sample and timing figure `factor` times longer (as other load would)."""
    row["samples_ms"] = [v * factor for v in row["samples_ms"]]
    for name in TIMING_MS:
        row[name] *= factor
    return row


def scale_cell(rows: list[dict], key: tuple, factor: float) -> None:
    """Slow the cell with `cell_key` == key down `factor` times."""
    for row in rows:
        if cell_key(row) == key:
            scale_timing(row, factor)


def with_text_encoder(rows: list[dict]) -> list[dict]:
    """The rows plus a text encoder cell per 256 px VAE cell (1/20 of its time), so that whole
    images compose (the text encoder serves every image size)."""
    encoders = [
        scale_timing(dict(row, stage="text_encoder", cell_id=row["cell_id"] + "-text"), 1 / 20)
        for row in rows
        if row["stage"] == "vae_decode" and row["height"] == 256 and row["status"] == "ok"
    ]
    return rows + encoders


def serve_rows(run_id: str = "serve-a") -> list[dict]:
    """Made-up `serve` rows: SD1.5 512 fp16 on the synthetic GPU at four Poisson rates (the last
    beyond what it can serve) and one closed loop. Latencies follow a simple queueing formula."""
    rows = []
    for index, rate in enumerate((0.5, 1.0, 2.0, 3.0, None)):
        load = min((rate or 1.6) / 2.4, 0.98)
        p50 = 0.8 * (1 + load / (2 * (1 - load)))
        latencies = [p50 * f for f in (0.9, 0.95, 1.0, 1.2, 1.5 + load)]
        unbounded = rate == 3.0
        rows.append({
            "schema_version": SCHEMA_VERSION, "run_id": run_id, "cell_id": f"serve{index:011d}",
            "suite": "serve-synthetic", "started_at": (START + timedelta(minutes=index)).isoformat(),
            "model": "sd15", "stage": "serve", "device": "cuda:0", "device_name": GPU_NAME,
            "height": 512, "width": 512, "batch_size": 4, "precision": "fp16", "attention": "sdpa",
            "compile": "none", "cfg": True, "steps": 20, "weights": "random", "status": "ok",
            "error": None, **_timing(p50 * 1000), "samples_ms": [1000 * s for s in latencies],
            "rate_rps": rate, "concurrency": None if rate else 4, "duration_s": 60.0,
            "max_wait_ms": 50.0, "slo_p99_s": 2.0, "serve_seed": 1,
            "offered_rps": rate or 1.6, "throughput_rps": min(rate or 1.6, 2.4),
            "p50_ms": 1000 * p50, "p90_ms": 1000 * latencies[3], "p99_ms": 1000 * latencies[4],
            "queue_ms": 1000 * (p50 - 0.8), "slo_ok": latencies[4] <= 2.0 and not unbounded,
            "queue_unbounded": unbounded, "utilisation": load, "mean_batch": 1 + 2 * load,
            "batch_size_counts": [int(30 * (1 - load)), int(10 * load), int(8 * load), int(6 * load)],
            "energy_per_image_j": 250.0, **_environment("cuda:0"),
        })  # fmt: skip
    return rows


FLEET = (  # (device name, host, latency scale): made-up speeds of three catalogue GPUs
    ("NVIDIA GeForce RTX 4090", "secret-alpha.corp.example", 1.0),
    ("NVIDIA A100-SXM4-80GB", "secret-beta.corp.example", 0.8),
    ("NVIDIA H100 80GB HBM3", "secret-gamma.corp.example", 0.5),
)


def write_fleet(folder: Path) -> list[Path]:
    """One GPU run from each of three synthetic machines (FLEET), an hour apart."""
    paths = []
    for index, (device_name, host, scale) in enumerate(FLEET):
        run_id = f"fleet-{index}"
        rows = synthetic_rows(run_id, started_at=START + timedelta(hours=index), scale=scale,
                              devices=("cuda:0",))  # fmt: skip
        rows = [row | {"device_name": device_name, "host": host} for row in rows]
        paths.append(write_run(rows, Path(folder) / f"{run_id}.parquet"))
    return paths
