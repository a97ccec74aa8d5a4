"""The end-of-run summary stays short for any run size, and an interrupted run prints none."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from sdbench.runner.run import SUMMARY_TABLE_ROWS, RunOutcome, print_summary


def _rows(count: int, oom_every: int) -> list[dict]:
    return [
        {
            "cell_id": f"c{i}", "model": "tiny", "stage": "unet", "width": 64 + 8 * (i % 50),
            "height": 64, "batch_size": 1 + i // 50, "precision": "fp32", "attention": "sdpa",
            "compile": "none", "status": "oom" if i % oom_every == 0 else "ok",
            "median_ms": 1.0 + i % 13, "warnings": ["only 3 samples"] if i % 2 else [],
        }
        for i in range(count)
    ]  # fmt: skip


def _summary(outcome: RunOutcome) -> list[str]:
    out = io.StringIO()
    print_summary(outcome, Console(file=out, width=160))
    return out.getvalue().splitlines()


def test_the_summary_of_a_50k_cell_run_is_bounded_and_shows_the_cells_not_ok_first():
    rows = _rows(50_000, oom_every=1000)
    lines = _summary(RunOutcome("run", Path("results/run.parquet"), rows))
    assert len(lines) < SUMMARY_TABLE_ROWS + 15
    table = [line for line in lines if line.startswith("  unet ")]  # grouped under "tiny:"
    assert len(table) == SUMMARY_TABLE_ROWS and lines.count("tiny:") == 1
    assert sum(" oom " in line for line in table) == 30  # 50 OOM cells: the first 30 shown
    assert "30 of 50000 cells shown (those not ok first); `sdbench show results/run.parquet`" in (
        "\n".join(lines)
    )
    assert "25000 cells: only 3 samples" in "\n".join(lines)
    assert lines[-2] == "50000 cells: 49950 ok, 50 oom (50 did not finish ok)"
    assert lines[-1] == "results: results/run.parquet"


def test_a_small_run_lists_every_cell_in_its_order():
    rows = _rows(12, oom_every=5)
    lines = _summary(RunOutcome("run", None, rows))
    table = [line for line in lines if line.startswith("  unet ")]
    assert [line.split()[1] for line in table] == [f"{64 + 8 * i}x64" for i in range(12)]
    assert not any("cells shown" in line for line in lines)


def test_an_interrupted_run_prints_no_summary_after_its_resume_hint():
    rows = _rows(50_000, oom_every=7)
    assert _summary(RunOutcome("run", None, rows, interrupted=True)) == []
