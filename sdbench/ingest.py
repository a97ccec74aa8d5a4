"""Convert pytest-benchmark JSON files into sdbench results rows (the Parquet schema), without torch.

Benchmarks written by sdbench's pytest plugin carry their cell in `extra_info`, so they get the
same `cell_id` as `sdbench run` gives that cell and compare against its runs. Any other
pytest-benchmark test becomes a row keyed by its full test name (`benchmark_name`), so a team's
own benchmarks get the same compare/history treatment. Raw samples come from `extra_info`
(`samples_ms`) or from `stats.data` (present in `--benchmark-json` output); with neither, the
stored summary statistics are used.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import MISSING, fields
from pathlib import Path

import pandas as pd

from sdbench.cell import Cell
from sdbench.errors import BadInput
from sdbench.stats import summarize
from sdbench.store import write_run
from sdbench.store.schema import COLUMNS, SCHEMA_VERSION

CELL_FIELDS = {f.name for f in fields(Cell)}
REQUIRED_CELL_FIELDS = {f.name for f in fields(Cell) if f.default is MISSING}
ENVIRONMENT_FIELDS = (
    "device_name",
    "torch",
    "diffusers",
    "cuda",
    "driver",
    "cpu_model",
    "gpu_count",
)
HOST_FIELDS = ("host", "os", "python", "sdbench_version", "git_sha")


def read_benchmark_json(path: str | Path) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(
            f'"{path}" does not exist. Give the file written by pytest --benchmark-json FILE.'
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(
            f'"{path}" is not readable JSON ({exc}). Give the file written by pytest --benchmark-json.'
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise BadInput(
            f'"{path}" is not a pytest-benchmark JSON file (no "benchmarks" list). '
            "Write one with pytest --benchmark-json FILE (or --benchmark-autosave)."
        )
    return data


def benchmark_rows(data: dict, run_id: str) -> list[dict]:
    """One results row per benchmark, plus one per cell the plugin recorded as not ok."""
    started_at = run_started_at(data)
    sdbench = data.get("sdbench") or {}
    suite = sdbench.get("suite") or "pytest-benchmark"
    machine = data.get("machine_info") or {}
    base = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "suite": suite,
        "started_at": started_at,
    }
    base.update(host_environment(machine, data.get("commit_info") or {}))
    devices = (machine.get("sdbench") or {}).get("devices") or sdbench.get("devices") or {}
    rows = []
    for bench in data["benchmarks"]:
        if not isinstance(bench, dict) or not isinstance(bench.get("stats"), dict):
            raise BadInput(
                f"Benchmark {bench.get('fullname') if isinstance(bench, dict) else bench!r} has no stats."
            )
        row = base | generic_environment(machine) | _cell_columns(bench)
        row |= _device_environment(devices, row.get("device"))
        row |= _timing_columns(bench)
        row |= {
            k: v
            for k, v in (bench.get("extra_info") or {}).items()
            if k in COLUMNS and k not in row
        }
        row["status"], row["error"] = "ok", None
        rows.append(row)
    for outcome in sdbench.get("not_ok") or []:
        cell = Cell.from_dict(outcome["cell"])
        row = base | generic_environment(machine) | cell.to_dict() | {"cell_id": cell.cell_id}
        row |= _device_environment(devices, cell.device)
        row |= {"status": outcome["status"], "error": outcome.get("error"), "benchmark_name": None}
        rows.append(row)
    return rows


def host_environment(machine: dict, commit: dict) -> dict:
    """Host facts: sdbench's own record when the plugin wrote one, else pytest-benchmark's machine_info."""
    recorded = machine.get("sdbench") or {}
    sha = commit.get("id")
    if sha and commit.get("dirty"):
        sha += "-dirty"
    fallback = {
        "host": machine.get("node"),
        "os": " ".join(p for p in (machine.get("system"), machine.get("release")) if p) or None,
        "python": machine.get("python_version"),
        "sdbench_version": None,
        "git_sha": sha,
    }
    return {k: recorded.get(k) or fallback[k] for k in HOST_FIELDS}


def generic_environment(machine: dict) -> dict:
    cpu = machine.get("cpu") or {}
    return {"cpu_model": cpu.get("brand_raw") or machine.get("processor") or None}


def _device_environment(devices: dict, device: object) -> dict:
    recorded = devices.get(device) if isinstance(device, str) else None
    if not recorded:
        return {}
    return {k: recorded.get(k) for k in ENVIRONMENT_FIELDS if recorded.get(k) is not None}


def _cell_columns(bench: dict) -> dict:
    """The cell's configuration and id from the plugin's extra_info, else an id from the test name."""
    extra = bench.get("extra_info") or {}
    name = bench.get("fullname") or bench.get("name")
    config = {k: v for k, v in extra.items() if k in CELL_FIELDS}
    if config.keys() >= REQUIRED_CELL_FIELDS:
        cell = Cell.from_dict(config)
        return cell.to_dict() | {"cell_id": cell.cell_id, "benchmark_name": name}
    digest = hashlib.sha256(f"pytest-benchmark:{name}".encode()).hexdigest()[:16]
    return {"cell_id": digest, "benchmark_name": name}


def _timing_columns(bench: dict) -> dict:
    extra, stats = bench.get("extra_info") or {}, bench["stats"]
    samples = extra.get("samples_ms") or [float(s) * 1000.0 for s in stats.get("data") or []]
    warmup = extra.get("warmup", (bench.get("options") or {}).get("warmup"))
    columns: dict = {"warmup": int(warmup) if isinstance(warmup, int | float) else None}
    if samples:
        return columns | summarize(samples).as_columns()
    seconds = {"median_ms": "median", "mean_ms": "mean", "std_ms": "stddev", "iqr_ms": "iqr"}
    columns |= {
        column: float(stats[key]) * 1000.0
        for column, key in seconds.items()
        if stats.get(key) is not None
    }
    return columns | {"n_samples": stats.get("rounds"), "samples_ms": None}


def run_started_at(data: dict) -> pd.Timestamp:
    """When the pytest session ran (pytest-benchmark's `datetime`, UTC)."""
    try:
        stamp = pd.Timestamp(data["datetime"])
    except (KeyError, TypeError, ValueError):
        raise BadInput(
            'This pytest-benchmark JSON has no valid "datetime"; runs cannot be ordered without it. '
            "Use the file pytest-benchmark wrote, unedited."
        ) from None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def ingest_run_id(data: dict, raw: bytes) -> str:
    """Stable per file: re-ingesting the same JSON rewrites the same run rather than adding one."""
    stamp = run_started_at(data)
    suite = (data.get("sdbench") or {}).get("suite") or "pytest"
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in suite)[:40]
    return f"{stamp.strftime('%Y%m%dT%H%M%SZ')}-{safe}-{hashlib.sha256(raw).hexdigest()[:6]}"


def ingest(path: str | Path, out_dir: str | Path) -> tuple[Path, list[dict]]:
    """Write `out_dir/<run_id>.parquet` from one pytest-benchmark JSON file; returns the path and rows."""
    path = Path(path)
    data = read_benchmark_json(path)
    run_id = ingest_run_id(data, path.read_bytes())
    rows = benchmark_rows(data, run_id)
    if not rows:
        raise BadInput(
            f'"{path}" holds no benchmarks. Did the benchmark tests run (not --benchmark-disable)?'
        )
    return write_run(rows, Path(out_dir) / f"{run_id}.parquet"), rows
