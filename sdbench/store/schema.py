"""The Parquet columns of a run (DESIGN.md's contract), with their Arrow types.

Format history:
  1 (2026-11): first version.
  2 (2026-12): `machine_id` and `machine` (sdbench/machine.py); version-1 files get them on read,
               computed from their own device_name, gpu_count, host, torch, cuda and driver.
     (2026-12): `allocator` ("tuned" or "default", suite [options] allocator) added without a
               bump, as a column that older files lack: their rows read it as null (not
               recorded; workers from 2026-11-26 on ran "tuned", earlier ones "default").
Readers must keep reading every version listed here; bump SCHEMA_VERSION when a column is
renamed or changes meaning, and teach `upgrade` how to read the older files.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = 2

_STR, _INT, _F, _BOOL = pa.string(), pa.int64(), pa.float64(), pa.bool_()

COLUMNS: dict[str, pa.DataType] = {
    # identity
    "schema_version": _INT,
    "run_id": _STR,
    "cell_id": _STR,
    "machine_id": _STR,  # hash of device name, GPU count, host, torch, CUDA/ROCm, driver
    "machine": _STR,  # readable label of the same machine, e.g. "h100-80gb-hbm3·node3"
    "suite": _STR,
    "started_at": pa.timestamp("us", tz="UTC"),
    # configuration
    "model": _STR,
    "stage": _STR,
    "device": _STR,
    "device_name": _STR,
    "height": _INT,
    "width": _INT,
    "batch_size": _INT,
    "precision": _STR,
    "attention": _STR,
    "compile": _STR,
    "channels_last": _BOOL,
    "vae": _STR,
    "memory": _STR,  # the lever axes (sdbench/levers.py); "none" in rows of older files
    "quant": _STR,
    "cache": _STR,
    "cfg": _BOOL,
    "steps": _INT,
    "weights": _STR,
    # outcome
    "status": _STR,
    "error": _STR,
    # timing
    "samples_ms": pa.list_(_F),
    "n_samples": _INT,
    "warmup": _INT,
    "median_ms": _F,
    "mean_ms": _F,
    "std_ms": _F,
    "iqr_ms": _F,
    "ci95_low_ms": _F,
    "ci95_high_ms": _F,
    "first_call_ms": _F,
    "compile_s": _F,
    "recompiles": _INT,
    "timed_s": _F,
    "cell_wall_s": _F,
    # derived
    "it_per_s": _F,
    "images_per_s": _F,
    "flops": _F,
    "tflops_per_s": _F,
    "mfu": _F,
    "peak_tflops": _F,
    "datasheet_tflops": _F,
    # memory
    "peak_mem_allocated_bytes": _INT,
    "peak_mem_reserved_bytes": _INT,
    "peak_mem_device_bytes": _INT,
    "peak_rss_bytes": _INT,
    # telemetry
    "energy_j": _F,
    "energy_per_image_j": _F,
    "avg_power_w": _F,
    "max_power_w": _F,
    "max_temp_c": _F,
    "sm_clock_mhz": _F,
    "mem_clock_mhz": _F,
    "throttle_reasons": _STR,
    "cpu_freq_mhz": _F,
    "cpu_util_pct": _F,
    # fidelity
    "ref_max_abs_err": _F,
    "ref_rel_err": _F,
    "nonfinite": _BOOL,
    "fidelity_ok": _BOOL,
    "fidelity_tolerance": _F,  # the relative L2 error this row's settings may show
    # quality
    "warnings": pa.list_(_STR),
    # environment
    "host": _STR,
    "os": _STR,
    "python": _STR,
    "torch": _STR,
    "diffusers": _STR,
    "cuda": _STR,
    "driver": _STR,
    "cpu_model": _STR,
    "cpu_threads": _INT,  # intra-op threads the worker ran with (SDBENCH_CPU_THREADS or every core)
    "allocator": _STR,  # tuned | default: the C allocator's setting ([options] allocator)
    "gpu_count": _INT,
    "sdbench_version": _STR,
    "git_sha": _STR,
    # device peak and telemetry details (issue 4)
    "peak_bandwidth_gbps": _F,  # probed copy bandwidth, GB/s (1e9 bytes), read + write
    "sm_clock_max_mhz": _F,  # the GPU's maximum SM (AMD: GFX) clock, for the 90% check
    "telemetry_backend": _STR,  # which sensors were read, e.g. "nvml+psutil", "psutil"
    "telemetry_error": _STR,  # why the device's own sensors could not be read; null when they were
    "telemetry_window_s": _F,  # wall seconds the telemetry window (timed repeats) lasted
    "energy_source": _STR,  # counter | integrated power | rapl
    "energy_min_window_s": _F,  # shortest window whose energy figure is kept
}

# Serving (stage "serve", issue 19): the cell's [serve] settings, then what the run measured.
# samples_ms holds every served request's latency; batch_ms every batch's time.
COLUMNS.update({
    "rate_rps": _F, "concurrency": _INT, "duration_s": _F, "requests": _INT, "max_wait_ms": _F,
    "slo_p99_s": _F, "serve_seed": _INT,
    "offered_rps": _F, "throughput_rps": _F, "p50_ms": _F, "p90_ms": _F, "p99_ms": _F,
    "queue_ms": _F, "slo_ok": _BOOL, "queue_unbounded": _BOOL, "requests_served": _INT,
    "requests_unserved": _INT, "utilisation": _F, "mean_batch": _F, "serve_wall_s": _F,
    "batch_sizes": pa.list_(_INT), "batch_ms": pa.list_(_F), "batch_size_counts": pa.list_(_INT),
    "batch_curve_ms": pa.list_(_F), "auto_rates_rps": pa.list_(_F),
})  # fmt: skip

# File metadata: every run file carries its schema version under this key (`write_run`).
SCHEMA_VERSION_KEY = b"sdbench_schema_version"
# File metadata: a report's results.parquet carries this key, and readers skip it (not a run).
REPORT_COPY_KEY = b"sdbench_report_copy"
# A Parquet file without these columns is not an sdbench run; readers skip it with a warning.
IDENTITY_COLUMNS = ("run_id", "cell_id", "status")

# The columns that say what shape one denoiser/VAE call has; tables key their rows on them.
SHAPE_COLUMNS = ("model", "stage", "height", "width", "batch_size")

STATUSES = ("ok", "oom", "error", "timeout", "unsupported")
# Suite [options] allocator and the `allocator` column: "tuned" = glibc keeps freed memory (no
# mmap, no trim; the default), "default" = the C library's allocator as it ships.
ALLOCATORS = ("tuned", "default")


def row_guided(value: object) -> bool:
    """A row's `cfg`: rows from before the column existed (or null) ran with guidance."""
    return True if value is None or value != value else bool(value)


def guided(frame):
    """Every row's `cfg` as a bool Series (row_guided), whether or not the column exists."""
    import pandas as pd

    if "cfg" not in frame.columns:
        return pd.Series(True, index=frame.index)
    return frame["cfg"].map(row_guided).astype(bool)


def with_levers(frame):
    """`frame` with the lever columns (memory, quant, cache) present and "none" where absent or
    null: rows of files from before the lever axes ran with every lever off."""
    from sdbench.levers import LEVERS

    frame = frame.copy()
    for lever in LEVERS:
        frame[lever] = frame[lever].fillna("none").astype(object) if lever in frame else "none"
    return frame


def plain_levers(frame):
    """True for rows with every lever off, as a bool Series (with_levers' rule)."""
    from sdbench.levers import LEVERS

    levers = with_levers(frame[[lever for lever in LEVERS if lever in frame]])  # not a full copy
    return (levers[list(LEVERS)] == "none").all(axis=1)
