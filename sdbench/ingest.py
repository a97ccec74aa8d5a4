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
import math
from dataclasses import MISSING, fields
from pathlib import Path

import pandas as pd

from sdbench.cell import Cell
from sdbench.errors import BadInput, did_you_mean
from sdbench.levers import LeverError, parse_cache, parse_memory, parse_quant
from sdbench.machine import with_machine
from sdbench.stats import summarize
from sdbench.store.files import output_error, write_run
from sdbench.store.schema import COLUMNS, SCHEMA_VERSION, STATUSES
from sdbench.store.validate import row_problem, show
from sdbench.suite import axes

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
    "allocator",
)
HOST_FIELDS = ("host", "os", "python", "sdbench_version", "git_sha")
MAX_WARMUP = 1_000_000
MAX_SECONDS = 1e9  # a timing of 30 years is a corrupt file, not a measurement
CELL_CHOICES = {
    "stage": axes.STAGES,
    "precision": axes.PRECISIONS,
    "attention": axes.ATTENTIONS,
    "compile": axes.COMPILE_MODES,
    "vae": axes.VAES,
}
LEVER_PARSERS = {"memory": parse_memory, "quant": parse_quant, "cache": parse_cache}


def cell_value_problem(name: str, value: object) -> str | None:
    """Why a recorded cell field is not one a suite could have given, or None."""
    field = {f.name: f for f in fields(Cell)}[name]
    kind = field.type
    if kind in ("float | None", "int | None"):  # the serve fields: null outside stage serve
        if value is None:
            return None
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and math.isfinite(value) and value >= 0 and (kind[0] == "f" or value == int(value))
        return None if ok else "must be a finite number, 0 or more (or null)"
    if kind == "bool":
        return None if isinstance(value, bool) else "must be true or false"
    if kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 100_000
        return None if ok else "must be a whole number from 1 to 100000"
    if not isinstance(value, str):
        return "must be text"
    allowed = axes.model_names() if name == "model" else CELL_CHOICES.get(name)
    if allowed is not None and value not in allowed:
        return f"is not one of {', '.join(allowed)}.{did_you_mean(value, allowed)}"
    if name == "device" and not axes.DEVICE_PATTERN.match(value):
        return f"is not a device ({axes.DEVICE_HELP})"
    if name in LEVER_PARSERS:
        try:
            LEVER_PARSERS[name](value)
        except LeverError as error:
            return str(error)
    return None


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


def benchmark_rows(data: dict, run_id: str, source: str = "this file") -> list[dict]:
    """One results row per benchmark, plus one per cell the plugin recorded as not ok.

    Every field is checked before a row is made; a wrong type or an impossible value raises
    BadInput naming the file (`source`), the benchmark, the field and the value.
    """
    started_at = run_started_at(data)
    sdbench = _mapping(data, "sdbench", source)
    suite = _text(sdbench.get("suite"), "sdbench.suite", source) or "pytest-benchmark"
    machine = _mapping(data, "machine_info", source)
    base = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "suite": suite,
        "started_at": started_at,
    }
    base |= host_environment(machine, _mapping(data, "commit_info", source))
    base |= generic_environment(machine)
    recorded = _mapping(machine, "sdbench", source)
    devices = recorded.get("devices") or sdbench.get("devices") or {}
    rows = [
        _benchmark_row(base, bench, devices, f"{source}: benchmark #{index + 1}")
        for index, bench in enumerate(data["benchmarks"])
    ]
    not_ok = sdbench.get("not_ok") or []
    if not isinstance(not_ok, list):
        raise _bad(source, "sdbench.not_ok", not_ok, "must be a list")
    for index, outcome in enumerate(not_ok):
        rows.append(_not_ok_row(base, outcome, devices, f"{source}: sdbench.not_ok #{index + 1}"))
    for row in rows:
        problem = row_problem(row)
        if problem:
            name = row.get("benchmark_name") or row.get("cell_id")
            raise BadInput(
                f"{source}: benchmark {show(name)}: {problem}. Fix or remove that benchmark, or "
                "ingest the file pytest-benchmark wrote, unedited."
            )
    return [with_machine(row) for row in rows]  # the machine id `sdbench run` gives this host


def _benchmark_row(base: dict, bench: object, devices: object, where: str) -> dict:
    if not isinstance(bench, dict) or not isinstance(bench.get("stats"), dict):
        raise BadInput(f'{where} has no "stats" object; it is not a pytest-benchmark result.')
    name = bench.get("fullname") or bench.get("name")
    where = f"{where} ({show(name)})"
    _mapping(bench, "extra_info", where)
    _mapping(bench, "options", where)
    row = base | _cell_columns(bench, where)
    row |= _device_environment(devices, row.get("device"))
    row |= _timing_columns(bench, where)
    row |= {
        k: v for k, v in (bench.get("extra_info") or {}).items() if k in COLUMNS and k not in row
    }
    row["status"], row["error"] = "ok", None
    return row


def _not_ok_row(base: dict, outcome: object, devices: object, where: str) -> dict:
    if not isinstance(outcome, dict):
        raise _bad(where, "", outcome, "must be an object with cell, status and error")
    cell = _cell(outcome.get("cell"), f"{where}: cell")
    status = outcome.get("status")
    if status not in STATUSES or status == "ok":
        allowed = ", ".join(s for s in STATUSES if s != "ok")
        raise _bad(where, "status", status, f"must be one of {allowed}")
    row = base | cell.to_dict() | {"cell_id": cell.cell_id}
    row |= _device_environment(devices, cell.device)
    error = _text(outcome.get("error"), "error", where)
    return row | {"status": status, "error": error, "benchmark_name": None}


def _bad(where: str, field: str, value: object, problem: str) -> BadInput:
    named = f' "{field}"' if field else ""
    return BadInput(
        f"{where}:{named} = {show(value)} {problem}. Fix the file, or ingest the file "
        "pytest-benchmark wrote, unedited."
    )


def _mapping(data: dict, key: str, where: str) -> dict:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(where, key, value, "must be an object")
    return value


def _text(value: object, field: str, where: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise _bad(where, field, value, "must be text")
    return value


def host_environment(machine: dict, commit: dict) -> dict:
    """Host facts: sdbench's own record when the plugin wrote one, else pytest-benchmark's machine_info."""
    recorded = machine.get("sdbench") or {}
    sha = commit.get("id") if isinstance(commit.get("id"), str) else None
    if sha and commit.get("dirty") is True:
        sha += "-dirty"
    system = " ".join(
        p for p in (machine.get("system"), machine.get("release")) if isinstance(p, str)
    )
    fallback = {
        "host": machine.get("node"),
        "os": system or None,
        "python": machine.get("python_version"),
        "sdbench_version": None,
        "git_sha": sha,
    }
    return {k: recorded.get(k) or fallback[k] for k in HOST_FIELDS}


def generic_environment(machine: dict) -> dict:
    cpu = machine.get("cpu") if isinstance(machine.get("cpu"), dict) else {}
    return {"cpu_model": cpu.get("brand_raw") or machine.get("processor") or None}


def _device_environment(devices: object, device: object) -> dict:
    recorded = (
        devices.get(device) if isinstance(devices, dict) and isinstance(device, str) else None
    )
    if not isinstance(recorded, dict):
        return {}
    return {k: recorded.get(k) for k in ENVIRONMENT_FIELDS if recorded.get(k) is not None}


def _cell_columns(bench: dict, where: str) -> dict:
    """The cell's configuration and id from the plugin's extra_info, else an id from the test name."""
    extra = bench.get("extra_info") or {}
    name = bench.get("fullname") or bench.get("name")
    if not isinstance(name, str) or not name:
        raise _bad(where, "fullname", name, "must be the test's name (text)")
    config = {k: v for k, v in extra.items() if k in CELL_FIELDS}
    if config.keys() >= REQUIRED_CELL_FIELDS:
        cell = _cell(config, f"{where}: extra_info")
        return cell.to_dict() | {"cell_id": cell.cell_id, "benchmark_name": name}
    digest = hashlib.sha256(f"pytest-benchmark:{name}".encode()).hexdigest()[:16]
    return {"cell_id": digest, "benchmark_name": name}


def _cell(config: object, where: str) -> Cell:
    """A Cell from recorded fields, each checked against the values a suite may give it."""
    if not isinstance(config, dict) or not config.keys() >= REQUIRED_CELL_FIELDS:
        missing = sorted(REQUIRED_CELL_FIELDS - set(config if isinstance(config, dict) else ()))
        raise _bad(where, "", config, f"lacks the cell's fields ({', '.join(missing)})")
    for name, value in config.items():
        problem = cell_value_problem(name, value)
        if problem:
            raise _bad(where, name, value, problem)
    return Cell.from_dict(config)


def _timing_columns(bench: dict, where: str) -> dict:
    extra, stats = bench.get("extra_info") or {}, bench["stats"]
    if extra.get("samples_ms"):
        samples = _samples(extra["samples_ms"], "extra_info.samples_ms", where, 1.0)
    else:
        samples = _samples(stats.get("data") or [], "stats.data", where, 1000.0)
    warmup = extra.get("warmup")
    if warmup is None:  # pytest-benchmark's own warmup option is a flag or a count
        option = (bench.get("options") or {}).get("warmup")
        warmup = option if isinstance(option, int) and not isinstance(option, bool) else None
    if warmup is not None and (
        isinstance(warmup, bool) or not isinstance(warmup, int) or not 0 <= warmup <= MAX_WARMUP
    ):
        raise _bad(where, "warmup", warmup, f"must be a count from 0 to {MAX_WARMUP}")
    columns: dict = {"warmup": warmup}
    if samples:
        return columns | summarize(samples).as_columns()
    seconds = {"median_ms": "median", "mean_ms": "mean", "std_ms": "stddev", "iqr_ms": "iqr"}
    for key in (*seconds.values(), "rounds"):
        if stats.get(key) is not None and _number_problem(stats[key]):
            raise _bad(where, f"stats.{key}", stats[key], _number_problem(stats[key]))
    columns |= {
        column: float(stats[key]) * 1000.0
        for column, key in seconds.items()
        if stats.get(key) is not None
    }
    return columns | {"n_samples": stats.get("rounds"), "samples_ms": None}


def _samples(values: object, field: str, where: str, to_ms: float) -> list[float]:
    if not isinstance(values, list):
        raise _bad(where, field, values, "must be a list of timings")
    for value in values:
        if _number_problem(value):
            raise _bad(where, field, value, f"holds an item that {_number_problem(value)}")
    return [float(v) * to_ms for v in values]


def _number_problem(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "is not a number"
    if not math.isfinite(value) or value < 0 or value > MAX_SECONDS:
        return f"is not a duration from 0 to {MAX_SECONDS:g}"
    return None


def run_started_at(data: dict) -> pd.Timestamp:
    """When the pytest session ran (pytest-benchmark's `datetime`, UTC)."""
    value = data.get("datetime")
    try:
        stamp = pd.Timestamp(value) if isinstance(value, str) else pd.NaT
    except (TypeError, ValueError, OverflowError):
        stamp = pd.NaT
    if stamp is pd.NaT:
        raise BadInput(
            'This pytest-benchmark JSON has no valid "datetime"; runs cannot be ordered without it. '
            "Use the file pytest-benchmark wrote, unedited."
        ) from None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def ingest_run_id(data: dict, raw: bytes) -> str:
    """Stable per file: re-ingesting the same JSON rewrites the same run rather than adding one."""
    stamp = run_started_at(data)
    recorded = data.get("sdbench")  # checked (with the file's name) when its rows are made
    suite = recorded.get("suite") if isinstance(recorded, dict) else None
    suite = suite if isinstance(suite, str) and suite else "pytest"
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in suite)[:40]
    return f"{stamp.strftime('%Y%m%dT%H%M%SZ')}-{safe}-{hashlib.sha256(raw).hexdigest()[:6]}"


def ingest_rows(path: str | Path) -> tuple[str, list[dict]]:
    """The run id and checked rows of one pytest-benchmark JSON file; nothing is written."""
    path = Path(path)
    data = read_benchmark_json(path)
    run_id = ingest_run_id(data, path.read_bytes())
    rows = benchmark_rows(data, run_id, f'"{path}"')
    if not rows:
        raise BadInput(
            f'"{path}" holds no benchmarks. Did the benchmark tests run (not --benchmark-disable)?'
        )
    return run_id, rows


def ingest(path: str | Path, out_dir: str | Path) -> tuple[Path, list[dict]]:
    """Write `out_dir/<run_id>.parquet` from one pytest-benchmark JSON file; returns the path and rows."""
    run_id, rows = ingest_rows(path)
    target = Path(out_dir) / f"{run_id}.parquet"
    try:
        return write_run(rows, target), rows
    except OSError as error:
        raise output_error(target, error) from None
