"""Rows of a small synthetic run, as `write_run` takes them: the reader's and its cache's tests."""

from __future__ import annotations

from sdbench.store.schema import SCHEMA_VERSION


def run_rows(run_id: str, host: str, cells: int = 3, median: float = 10.0, **extra) -> list[dict]:
    """`cells` rows of run `run_id` on `host`: the first out of memory, the others ok with
    medians `median` + 0.5, + 1.5, ...; `extra` columns on every row."""
    return [
        {
            "schema_version": SCHEMA_VERSION,
            "run_id": run_id,
            "cell_id": f"cell-{index}",
            "suite": "fleet",
            "started_at": "2026-11-01T12:00:00+00:00",
            "model": "tiny",
            "stage": "unet",
            "device": "cuda:0",
            "batch_size": index + 1,
            "status": "ok" if index else "oom",
            "samples_ms": [median + index, median + 1 + index],
            "median_ms": median + 0.5 + index if index else None,
            "warnings": ["high spread"] if index == 2 else [],
            "host": host,
            **extra,
        }
        for index in range(cells)
    ]
