"""A worker that crashes, is killed, hangs or runs out of memory costs only the cell in flight."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
from rich.console import Console

from sdbench.cell import Cell, Measure
from sdbench.runner.executor import OomTracker
from sdbench.runner.run import run_suite


def _run(suite, out, monkeypatch, faults: dict) -> dict[str, dict]:
    """Run the suite with SDBENCH_INJECT=faults; rows by cell label, read back from the Parquet."""
    monkeypatch.setenv("SDBENCH_INJECT", json.dumps(faults))
    outcome = run_suite(str(suite), out, console=Console(quiet=True))
    table = pq.read_table(outcome.path).to_pylist()
    assert len(table) == len({row["cell_id"] for row in table}) == len(outcome.rows)
    return {f"{row['width']} bs{row['batch_size']}": row for row in table}


def test_segfault_kill_and_hang_cost_one_cell_each_and_the_run_goes_on(
    tiny_suite, tmp_path, monkeypatch
):
    suite = tiny_suite(matrix={"resolution": [64, 72, 80, 88]}, measure={"cell_timeout_s": 20})
    rows = _run(
        suite,
        tmp_path / "out",
        monkeypatch,
        {"64x64": "segfault", "72x72": "kill", "80x80": "hang"},
    )
    assert rows["64 bs1"]["status"] == "error"
    assert "worker killed by SIGSEGV" in rows["64 bs1"]["error"]
    # The worker enables faulthandler: the reason names the fatal error and where it happened.
    assert "last stderr: Fatal Python error: Segmentation fault" in rows["64 bs1"]["error"]
    assert "inject.py" in rows["64 bs1"]["error"]  # the innermost frame
    assert rows["72 bs1"]["status"] == "error"
    assert "worker killed by SIGKILL" in rows["72 bs1"]["error"]
    assert rows["80 bs1"]["status"] == "timeout"
    assert "no answer within 20 s" in rows["80 bs1"]["error"]
    # The worker was restarted after each death and the last cell was measured normally.
    assert rows["88 bs1"]["status"] == "ok"
    assert rows["88 bs1"]["n_samples"] >= 1 and rows["88 bs1"]["median_ms"] > 0


def test_oom_is_recorded_with_peak_memory_and_larger_batches_are_skipped(
    tiny_suite, tmp_path, monkeypatch
):
    suite = tiny_suite(matrix={"batch_size": [3, 1, 2]})
    rows = _run(suite, tmp_path / "out", monkeypatch, {"bs1 ": "oom"})
    assert rows["64 bs1"]["status"] == "oom"
    assert "out of memory" in rows["64 bs1"]["error"]
    assert rows["64 bs1"]["peak_rss_bytes"] > 10 * 2**20  # a worker with torch loaded
    for larger in ("64 bs2", "64 bs3"):
        assert rows[larger]["status"] == "oom"
        assert "smaller batch already out of memory (batch 1)" in rows[larger]["error"]
        assert rows[larger]["n_samples"] is None


def test_larger_batches_are_still_tried_when_the_suite_says_so(tiny_suite, tmp_path, monkeypatch):
    suite = tiny_suite(matrix={"batch_size": [1, 2]}, options={"skip_larger_after_oom": False})
    rows = _run(suite, tmp_path / "out", monkeypatch, {"bs1 ": "oom", "bs2 ": "oom"})
    assert rows["64 bs1"]["status"] == rows["64 bs2"]["status"] == "oom"
    # bs2 ran (the injected OOM fired inside the worker) rather than being skipped.
    assert "injected: CUDA out of memory" in rows["64 bs2"]["error"]
    assert "smaller batch" not in rows["64 bs2"]["error"]


def _cell(batch_size: int, resolution: int = 64) -> Cell:
    return Cell("tiny", "unet", "cpu", resolution, resolution, batch_size, "fp32", "sdpa", "none")


def test_oom_tracker_skips_only_larger_batches_of_the_same_shape():
    tracker = OomTracker(enabled=True)
    tracker.record(_cell(2), "oom")
    assert tracker.skip_reason(_cell(1)) is None
    assert tracker.skip_reason(_cell(2)) is None
    assert "(batch 2)" in tracker.skip_reason(_cell(4))
    assert tracker.skip_reason(_cell(4, resolution=128)) is None
    tracker.record(_cell(1), "oom")
    assert "(batch 1)" in tracker.skip_reason(_cell(2))
    assert OomTracker(enabled=False).skip_reason(_cell(4)) is None


def test_an_oom_in_the_worker_empties_the_allocator_before_the_next_cell(monkeypatch):
    from sdbench.runner import measure, memory

    released: list[str] = []
    real_release = memory.release
    monkeypatch.setattr(
        memory, "release", lambda device: (released.append(device), real_release(device))
    )
    monkeypatch.setenv("SDBENCH_INJECT", json.dumps({"bs1 ": "oom"}))
    state = measure.new_state("cpu")
    cell = Cell("tiny", "unet", "cpu", 64, 64, 1, "fp32", "sdpa", "none")
    released.clear()
    result = measure.run_cell(cell, Measure(warmup=0, min_repeats=1, max_repeats=1), state)
    assert result["status"] == "oom"
    assert result["peak_rss_bytes"] > 0
    # In the cleanup after the OOM (peaks are reset only once a workload is built).
    assert released == ["cpu"]
