"""Run groups of cells on worker processes: one thread per device, one worker per group.

Groups of different devices run in parallel (every GPU of a host busy at once); groups of one
device run one after another so they never share the device. A worker for `cuda:N` is pinned: it
sees only that GPU (as cuda:0), so nothing it does lands on a GPU another worker is measuring.
Each result goes to `on_result` as soon as it exists (the caller journals it). If `on_result`
fails (a full disk), or a device thread hits a bug, every worker is stopped and the exception is
raised from `run`.
"""

from __future__ import annotations

import functools
import os
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from itertools import groupby

from sdbench.cell import Cell, Measure
from sdbench.devices import present_devices
from sdbench.devices.device import Device
from sdbench.runner import interrupt
from sdbench.runner.process import WorkerLost, WorkerProcess, hello_timeout_s
from sdbench.runner.worker import GPU_COUNT_ENV

ResultCallback = Callable[[Cell, dict, dict], None]  # (cell, measured fields, worker environment)
MAX_FAILED_STARTS = 2  # a worker that cannot start twice in a row will not start for this group
STOP_JOIN_S = 10.0  # after stop(), how long device threads get to notice their workers died
VISIBLE_GPUS_ENV = "CUDA_VISIBLE_DEVICES"  # ROCm's HIP runtime honours it too


def pinned_device(device: str, environ: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """The device id a worker for `device` uses, and the environment that shows it only that GPU.

    Without this, CUDA events recorded on the current device (cuda:0) would time kernels running
    on cuda:N, and every worker would put a context on GPU 0. An existing CUDA_VISIBLE_DEVICES is
    honoured: cuda:N is its Nth entry. Other devices are used as they are.
    """
    parsed = Device.parse(device)
    if parsed.kind != "cuda" or parsed.index is None:
        return device, {}
    visible = [v.strip() for v in environ.get(VISIBLE_GPUS_ENV, "").split(",") if v.strip()]
    index = parsed.index
    physical = visible[index] if index < len(visible) else str(index)
    return "cuda:0", {VISIBLE_GPUS_ENV: physical}


def host_gpu_count(environ: Mapping[str, str]) -> int:
    """GPUs this run can see: a pinned worker sees one, but the row should say the host's count."""
    visible = [v for v in environ.get(VISIBLE_GPUS_ENV, "").split(",") if v.strip()]
    if visible:
        return len(visible)
    return _detected_gpu_count()


@functools.cache
def _detected_gpu_count() -> int:
    """CUDA/ROCm GPUs torch sees, asked of a detection subprocess: the manager never imports torch."""
    return sum(1 for device in present_devices() if device.get("kind") == "cuda")


def as_seen_by(device: str, cell: Cell) -> Cell:
    """The cell as a worker pinned to `device` must be asked for it."""
    return cell if cell.device == device else replace(cell, device=device)


def group_cells(cells: Sequence[Cell]) -> list[list[Cell]]:
    """Contiguous (device, model, precision) groups, smaller batches first within each shape."""
    groups = []
    for _, members in groupby(cells, key=lambda c: c.group):
        groups.append(sorted(members, key=lambda c: c.batch_size))
    return groups


class OomTracker:
    """After a batch size runs out of memory, larger batches of the same shape are not tried."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._smallest: dict[tuple, int] = {}

    @staticmethod
    def _shape(cell: Cell) -> tuple:
        values = cell.to_dict()
        values.pop("batch_size")
        return tuple(sorted(values.items()))

    def skip_reason(self, cell: Cell) -> str | None:
        smallest = self._smallest.get(self._shape(cell))
        if self.enabled and smallest is not None and cell.batch_size > smallest:
            return f"skipped: smaller batch already out of memory (batch {smallest})"
        return None

    def record(self, cell: Cell, status: str) -> None:
        if status == "oom":
            key = self._shape(cell)
            self._smallest[key] = min(cell.batch_size, self._smallest.get(key, cell.batch_size))


class LocalExecutor:
    """Worker processes on this host."""

    def __init__(
        self,
        measure: Measure,
        skip_larger_after_oom: bool = True,
        worker_env: dict | None = None,
        worker_factory: Callable[..., WorkerProcess] | None = None,
    ):
        self.measure = measure
        self.oom = OomTracker(skip_larger_after_oom)
        self.worker_env = worker_env
        self.worker_factory = worker_factory or WorkerProcess  # tests pass a fake
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._workers: set[WorkerProcess] = set()
        self._failures: list[BaseException] = []

    def run(self, cells: Sequence[Cell], on_result: ResultCallback) -> None:
        by_device: dict[str, list[list[Cell]]] = defaultdict(list)
        for group in group_cells(cells):
            by_device[group[0].device].append(group)
        threads = [
            threading.Thread(
                target=self._run_device, args=(groups, on_result), daemon=True, name=device
            )
            for device, groups in by_device.items()
        ]
        for thread in threads:
            thread.start()
        try:
            with interrupt.deferred():
                for thread in threads:
                    while thread.is_alive():
                        thread.join(timeout=0.5)
                        interrupt.check()
        except KeyboardInterrupt:
            self.stop()
            # Let device threads return so no result is being journaled while the caller exits.
            for thread in threads:
                thread.join(timeout=STOP_JOIN_S)
            raise
        if self._failures:
            raise self._failures[0]

    def stop(self) -> None:
        """Abandon the cells in flight: kill every worker (and any still starting)."""
        self._stopping.set()
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            worker.kill()

    def _run_device(self, groups: list[list[Cell]], on_result: ResultCallback) -> None:
        try:
            for group in groups:
                if self._stopping.is_set():
                    return
                self._run_group(group, on_result)
        except BaseException as failure:  # re-raised by run() in the caller's thread
            with self._lock:
                self._failures.append(failure)
            self.stop()

    def _run_group(self, group: list[Cell], on_result: ResultCallback) -> None:
        worker: WorkerProcess | None = None
        environment: dict = {}
        failed_starts, start_failure = 0, ""
        try:
            for cell in group:
                if self._stopping.is_set():
                    return
                reason = self.oom.skip_reason(cell)
                if failed_starts >= MAX_FAILED_STARTS:
                    reason = f"worker could not start ({failed_starts} tries): {start_failure}"
                    on_result(cell, {"status": "error", "error": reason}, environment)
                    continue
                if reason:
                    on_result(cell, {"status": "oom", "error": reason}, environment)
                    continue
                try:
                    if worker is None:
                        worker = self._start(cell.device)
                        environment, failed_starts = worker.hello, 0
                    result = worker.request(as_seen_by(worker.device, cell), self.measure)
                except WorkerLost as lost:
                    if self._stopping.is_set():
                        return
                    result = {"status": lost.status, "error": lost.reason}
                    if worker is None:
                        failed_starts, start_failure = failed_starts + 1, lost.reason
                    else:
                        self._forget(worker)
                        worker.kill()
                    worker = None  # a fresh one for the rest of the group
                self.oom.record(cell, result["status"])
                on_result(cell, result, environment)
        finally:
            if worker is not None:
                worker.stop()
                self._forget(worker)

    def _start(self, device: str) -> WorkerProcess:
        """A ready worker; registered while it starts so stop() can kill it."""
        spawned: list[WorkerProcess] = []

        def register(worker: WorkerProcess) -> None:
            spawned.append(worker)
            with self._lock:
                self._workers.add(worker)
            if self._stopping.is_set():
                worker.kill()

        environ = {**os.environ, **(self.worker_env or {})}
        worker_device, pin_env = pinned_device(device, environ)
        if pin_env:
            pin_env[GPU_COUNT_ENV] = str(host_gpu_count(environ))
        env = {**(self.worker_env or {}), **pin_env}
        try:
            return self.worker_factory(
                worker_device,
                env=env,
                on_spawn=register,
                hello_timeout_s=hello_timeout_s(self.measure),
            )
        except BaseException:
            for worker in spawned:
                self._forget(worker)
                worker.kill()
            raise

    def _forget(self, worker: WorkerProcess) -> None:
        with self._lock:
            self._workers.discard(worker)
