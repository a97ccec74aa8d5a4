"""A group of cells the device cannot run at all is recorded without starting a worker for it."""

from __future__ import annotations

import subprocess

import pytest
from conftest import run_suite_text, suite_text

from sdbench.cell import Cell
from sdbench.errors import DeviceError
from sdbench.runner import capability_check, executor
from sdbench.runner.process import WorkerProcess
from sdbench.runner.run import _settle_unsupported

SUITE = suite_text(
    name="unsupported-groups",
    matrix={"stage": ["unet"], "precision": ["fp32", "tf32"], "attention": ["sdpa", "efficient"]},
    options={"steps": 2},
)

ENVIRONMENT = ["device_name", "torch", "diffusers", "cuda", "driver", "cpu_model"]
ENVIRONMENT += ["gpu_count", "cpu_threads", "allocator"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    asked: list[tuple[str, str]] = []  # (precision, attention) of every cell sent to a worker
    spawned: list[str] = []

    class CountingWorker(WorkerProcess):
        def __init__(self, device: str, **options):
            spawned.append(device)
            super().__init__(device, **options)

        def request(self, cell, measure):
            asked.append((cell.precision, cell.attention))
            return super().request(cell, measure)

    mp = pytest.MonkeyPatch()
    mp.setattr(executor, "WorkerProcess", CountingWorker)
    try:
        outcome, frame = run_suite_text(tmp_path_factory.mktemp("groups"), "groups", SUITE)
    finally:
        mp.undo()
    return outcome, frame, spawned, asked


def test_an_all_unsupported_group_starts_no_worker(run):
    _, _, spawned, asked = run
    assert spawned == ["cpu"]  # the fp32 group's; tf32 on a CPU is unsupported throughout
    assert sorted(asked) == [("fp32", "efficient"), ("fp32", "sdpa")]


def test_its_cells_are_still_unsupported_rows_with_the_reason(run):
    outcome, frame, _, _ = run
    assert len(frame) == 4 and outcome.path.exists()
    tf32 = frame[frame.precision == "tf32"]
    assert list(tf32.status) == ["unsupported", "unsupported"]
    assert tf32.error.str.startswith("tf32 is a tensor-core mode").all()
    assert tf32.median_ms.isna().all()


def test_its_rows_have_the_fields_a_worker_gives_an_unsupported_cell(run):
    _, frame, _, _ = run
    by_worker = frame[(frame.precision == "fp32") & (frame.attention == "efficient")].iloc[0]
    assert by_worker.status == "unsupported"  # a mixed group's unsupported cell: its worker says so
    for _, row in frame[frame.precision == "tf32"].iterrows():
        assert row[ENVIRONMENT].to_dict() == by_worker[ENVIRONMENT].to_dict()
        assert set(row[row.notna()].index) == set(by_worker[by_worker.notna()].index)


def _cells(*precisions: str) -> list[Cell]:
    return [Cell("tiny", "unet", "cpu", 64, 64, 1, p, "sdpa", "none") for p in precisions]


def test_a_failed_capability_check_leaves_every_group_to_its_worker(monkeypatch):
    def fails(groups, worker_env):
        raise DeviceError("The capability check failed")

    monkeypatch.setattr(capability_check, "unsupported_groups", fails)
    recorded = []
    cells = _cells("fp32", "tf32")
    left = _settle_unsupported(cells, {}, lambda *result: recorded.append(result))
    assert left == cells and recorded == []


def test_a_single_group_is_not_checked_ahead_of_its_worker(monkeypatch):
    calls = []
    monkeypatch.setattr(capability_check, "unsupported_groups", lambda *a: calls.append(a) or [])
    cells = _cells("tf32")
    assert _settle_unsupported(cells, {}, lambda *result: None) == cells
    assert calls == []


@pytest.mark.parametrize("stdout", ["", "torchao: a library's notice\n"])
def test_a_capability_check_with_no_readable_answer_is_a_device_error(monkeypatch, stdout):
    answered = subprocess.CompletedProcess([], 0, stdout=stdout, stderr="")
    monkeypatch.setattr(capability_check.subprocess, "run", lambda *a, **k: answered)
    with pytest.raises(DeviceError, match="no answer it could read"):
        capability_check.unsupported_groups([_cells("fp32"), _cells("tf32")], {})
