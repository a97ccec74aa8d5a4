"""Several accelerators: one pinned worker per device, devices in parallel, one run."""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import replace

import pyarrow.parquet as pq
import pytest
from rich.console import Console

from sdbench.cell import Cell, Measure
from sdbench.runner import executor
from sdbench.runner import executor as executor_module
from sdbench.runner import run as run_module
from sdbench.runner.executor import LocalExecutor, as_seen_by, host_gpu_count, pinned_device
from sdbench.runner.process import WorkerProcess
from sdbench.runner.run import run_suite
from sdbench.suite.expand import resolve_devices

FAKE_CELL_S = 0.3


def _cell(device: str, precision: str = "fp32", batch_size: int = 1) -> Cell:
    return Cell("tiny", "unet", device, 64, 64, batch_size, precision, "sdpa", "none")


class FakeWorker:
    """Stands in for a worker process: sleeps per cell and records what it was asked, and when."""

    log: list[dict] = []
    lock = threading.Lock()
    started = itertools.count()  # id() can be reused once a finished worker is collected

    def __init__(self, device: str, env: dict | None = None, on_spawn=None, **options):
        self.serial = next(self.started)
        self.device = device
        self.gpu = (env or {}).get("CUDA_VISIBLE_DEVICES")
        self.gpu_count = (env or {}).get("SDBENCH_GPU_COUNT")
        if on_spawn:
            on_spawn(self)
        self.hello = {"device_name": f"fake GPU {self.gpu}"}

    def request(self, cell: Cell, measure: Measure) -> dict:
        begin = time.monotonic()
        time.sleep(FAKE_CELL_S)
        with self.lock:
            self.log.append(
                {
                    "worker": self.serial,
                    "gpu": self.gpu,
                    "gpu_count": self.gpu_count,
                    "asked": cell,
                    "begin": begin,
                    "end": time.monotonic(),
                }
            )
        return {"status": "ok", "median_ms": 1.0}

    def stop(self) -> None:
        pass

    def kill(self) -> None:
        pass


@pytest.mark.serial  # times two lanes against each other
def test_each_gpu_gets_its_own_pinned_workers_and_gpus_run_at_the_same_time(monkeypatch):
    # The host's GPU count comes from a detection subprocess; this host has two fake ones.
    monkeypatch.setattr(executor, "_detected_gpu_count", lambda: 2)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    FakeWorker.log = []
    cells = [_cell(d, p) for d in ("cuda:0", "cuda:1") for p in ("fp32", "bf16")]
    results: list[tuple[Cell, dict, dict]] = []
    pool = LocalExecutor(Measure(), worker_factory=FakeWorker)
    begin = time.monotonic()
    pool.run(cells, lambda cell, result, env: results.append((cell, result, env)))
    elapsed_s = time.monotonic() - begin

    # The driver hears about the cells it planned, each with its own GPU's environment.
    assert sorted(c.cell_id for c, _, _ in results) == sorted(c.cell_id for c in cells)
    for cell, _, env in results:
        assert env["device_name"] == f"fake GPU {cell.device[-1]}"
    # Workers see one GPU, as cuda:0: the physical index travels in CUDA_VISIBLE_DEVICES.
    assert {entry["asked"].device for entry in FakeWorker.log} == {"cuda:0"}
    by_gpu = {g: [e for e in FakeWorker.log if e["gpu"] == g] for g in ("0", "1")}
    assert [len(v) for v in by_gpu.values()] == [2, 2]
    # One worker per (device, model, precision) group: 4 groups, 4 workers.
    assert len({e["worker"] for e in FakeWorker.log}) == 4
    # The two GPUs ran at the same time; cells of one GPU never did.
    assert any(
        a["begin"] < b["end"] and b["begin"] < a["end"] for a in by_gpu["0"] for b in by_gpu["1"]
    )
    for entries in by_gpu.values():
        first, second = sorted(entries, key=lambda e: e["begin"])
        assert second["begin"] >= first["end"]
    assert elapsed_s < 4 * FAKE_CELL_S  # two GPUs in parallel: about 2 cells' time, not 4


def test_pinning_honours_an_existing_visible_devices_mask():
    assert pinned_device("cuda:1", {"CUDA_VISIBLE_DEVICES": "3, 5"}) == (
        "cuda:0",
        {"CUDA_VISIBLE_DEVICES": "5"},
    )
    assert pinned_device("cuda:2", {}) == ("cuda:0", {"CUDA_VISIBLE_DEVICES": "2"})
    assert host_gpu_count({"CUDA_VISIBLE_DEVICES": "3, 5"}) == 2
    assert pinned_device("cpu", {"CUDA_VISIBLE_DEVICES": "1"}) == ("cpu", {})
    assert pinned_device("mps", {}) == ("mps", {})
    cell = _cell("cuda:3")
    assert as_seen_by("cuda:0", cell) == replace(cell, device="cuda:0")
    assert as_seen_by("cuda:3", cell) is cell


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        (["auto"], ["cuda:0", "cuda:1"]),
        (["auto", "cpu"], ["cuda:0", "cuda:1", "cpu"]),
        (["cuda"], ["cuda:0", "cuda:1"]),
        (["cuda:1"], ["cuda:1"]),
    ],
)
def test_auto_means_every_accelerator_and_the_cpu_only_when_named(requested, expected):
    assert resolve_devices(requested, ["cpu", "cuda:0", "cuda:1"]) == expected


class CpuBackedGpu(WorkerProcess):
    """A real worker on the CPU that poses as the GPU it was pinned to (cuda:0 + a mask)."""

    lifetimes: list[tuple[str, float, float]] = []  # (physical GPU, started, stopped)

    def __init__(self, device: str, env: dict | None = None, on_spawn=None, **options):
        self.gpu, self.began = (env or {})["CUDA_VISIBLE_DEVICES"], time.monotonic()
        super().__init__("cpu", env={**(env or {}), "CUDA_VISIBLE_DEVICES": ""}, on_spawn=on_spawn)
        self.device = device

    def request(self, cell: Cell, measure: Measure) -> dict:
        assert cell.device == "cuda:0"
        return super().request(replace(cell, device="cpu"), measure)

    def stop(self) -> None:
        super().stop()
        self.lifetimes.append((self.gpu, self.began, time.monotonic()))


@pytest.mark.slow  # two real workers start torch at once: ~30 s on 2 cores
def test_a_run_on_two_gpus_measures_both_in_parallel_into_one_results_file(
    tiny_suite, tmp_path, monkeypatch
):
    fake_gpus = [{"id": "cpu"}, {"id": "cuda:0"}, {"id": "cuda:1"}]
    monkeypatch.setattr(run_module, "present_devices", lambda: fake_gpus)
    monkeypatch.setattr(executor_module, "WorkerProcess", CpuBackedGpu)
    CpuBackedGpu.lifetimes = []
    suite = tiny_suite(matrix={"device": ["auto"], "batch_size": [1, 2]})
    outcome = run_suite(str(suite), tmp_path / "out", console=Console(quiet=True))

    rows = pq.read_table(outcome.path).to_pylist()
    assert sorted((r["device"], r["batch_size"], r["status"]) for r in rows) == [
        ("cuda:0", 1, "ok"), ("cuda:0", 2, "ok"), ("cuda:1", 1, "ok"), ("cuda:1", 2, "ok"),
    ]  # fmt: skip
    assert list(tmp_path.joinpath("out").glob("*.parquet")) == [outcome.path]
    # One worker per GPU (one group each), alive at the same time.
    (gpu_a, began_a, ended_a), (gpu_b, began_b, ended_b) = sorted(CpuBackedGpu.lifetimes)
    assert (gpu_a, gpu_b) == ("0", "1")
    assert began_a < ended_b and began_b < ended_a


def test_a_pinned_worker_reports_the_run_gpu_count_not_its_one_visible_gpu(monkeypatch):
    # Rows made before pinning said 4 on a 4-GPU host; a pinned worker sees 1 and would make
    # compare flag a hardware change between two runs on the same machine.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    FakeWorker.log = []
    pool = LocalExecutor(Measure(), worker_factory=FakeWorker)
    pool.run([_cell("cuda:2")], lambda cell, result, env: None)
    assert [(e["gpu"], e["gpu_count"]) for e in FakeWorker.log] == [("2", "4")]
    from sdbench.runner.worker import gpu_count

    monkeypatch.setenv("SDBENCH_GPU_COUNT", "4")
    assert gpu_count() == 4
