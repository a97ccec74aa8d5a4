"""Run groups of cells on a Ray cluster: one actor per (device, model, precision) group.

Each actor holds one GPU (or CPU slots on CPU-only nodes), optionally of one accelerator type,
and runs the same worker process as the local executor on its node. The driver sends the group's
cells one at a time and hands every row to `on_result` as it arrives, so the driver's journal and
`--resume` work exactly as with the local executor. A worker that dies costs its cell (the actor
starts a fresh one); an actor or node that dies is replaced and the cell tried again, up to
MAX_ATTEMPTS, then the cell is an error row and the group goes on. Ray is imported only here,
and only when this executor is used (`pip install "sdbench[ray]"`).
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from sdbench.cell import Cell, Measure
from sdbench.devices.device import device_kind
from sdbench.errors import BadInput, SdbenchError
from sdbench.runner.environment import host_environment
from sdbench.runner.executor import (
    MAX_FAILED_STARTS,
    OomTracker,
    ResultCallback,
    as_seen_by,
    group_cells,
)
from sdbench.runner.process import (
    MANAGER_PID_ENV,
    WorkerLost,
    WorkerProcess,
    hello_timeout_s,
)

RAY_HINT = (
    'The ray executor needs Ray, which is not installed here: pip install "sdbench[ray]" '
    '(or pip install "ray[default]"), or run with --executor local.'
)
MAX_ATTEMPTS = 2  # a cell whose actor (or node) died is tried once more on a fresh actor
GPU_KINDS = ("cuda", "rocm")  # what Ray schedules as "GPU" and shows to the actor as cuda:0
INJECT_ENV = "SDBENCH_INJECT"
ACTOR_KILL = "actor-kill"  # an injectable fault: the actor dies as if its node were lost


def import_ray():
    """The ray module, or a user error with the install hint."""
    try:
        import ray
    except ImportError:
        raise BadInput(RAY_HINT) from None
    return ray


def node_device(device: str) -> str:
    """The device id on the node: Ray shows an actor its one GPU as cuda:0."""
    kind = device_kind(device)
    if kind in GPU_KINDS:
        return "cuda:0"
    if kind == "cpu":
        return "cpu"
    raise BadInput(
        f'The ray executor runs cells on GPUs (cuda, rocm) and CPUs, not on "{device}". '
        "Run these cells with --executor local on that machine."
    )


def _injected_fault(cell: Cell, worker_env: dict) -> str | None:
    """SDBENCH_INJECT's fault for this cell (the same matching as sdbench.runner.inject)."""
    raw = worker_env.get(INJECT_ENV)
    for pattern, fault in (json.loads(raw) if raw else {}).items():
        if pattern == cell.cell_id or pattern in cell.label():
            return fault
    return None


class GroupRunner:
    """Runs on a Ray node: one worker process for one group, restarted when it dies.

    Methods run on the actor's main thread, which outlives the worker, as WorkerProcess needs.
    """

    def __init__(self, worker_env: dict[str, str]):
        self.worker_env = worker_env
        self.worker: WorkerProcess | None = None
        self.environment: dict = {}
        self.failed_starts, self.start_failure = 0, ""
        self.host = host_environment()  # the node's host, os, python and git_sha for its rows

    def measure(self, cell_fields: dict, measure_fields: dict) -> tuple[dict, dict]:
        """(measured fields, environment) of one cell; every outcome is a row."""
        cell, measure = Cell.from_dict(cell_fields), Measure(**measure_fields)
        if _injected_fault(cell, self.worker_env) == ACTOR_KILL:
            os._exit(1)
        if self.failed_starts >= MAX_FAILED_STARTS:
            reason = f"worker could not start ({self.failed_starts} tries): {self.start_failure}"
            return {"status": "error", "error": reason}, self.environment
        try:
            if self.worker is None:
                self.worker = WorkerProcess(
                    node_device(cell.device),
                    env=self.worker_env,
                    hello_timeout_s=hello_timeout_s(measure),
                )
                self.environment = {**self.host, **self.worker.hello}
                self.failed_starts = 0
            result = self.worker.request(as_seen_by(self.worker.device, cell), measure)
        except WorkerLost as lost:
            result = {"status": lost.status, "error": lost.reason}
            if self.worker is None:
                self.failed_starts, self.start_failure = self.failed_starts + 1, lost.reason
            else:
                self.worker.kill()
                self.worker = None
        return result, self.environment

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None


@dataclass
class _Lane:
    """One group on its way through the cluster."""

    cells: deque[Cell]
    actor: object = None
    attempts: int = 0  # tries of the cell at the head of `cells` whose actor died
    first_sent_s: float | None = None
    last_received_s: float | None = None
    group: tuple = field(default=())


class RayExecutor:
    """Groups of cells on a Ray cluster (`address`: None starts a local one, "auto" joins one)."""

    def __init__(
        self,
        measure: Measure,
        skip_larger_after_oom: bool = True,
        address: str | None = None,
        gpu_type: str | None = None,
        cpus_per_task: float = 1,
        worker_env: dict | None = None,
    ):
        self.ray = import_ray()
        self.measure = measure
        self.oom = OomTracker(skip_larger_after_oom)
        self.address = address
        self.gpu_type = gpu_type
        self.cpus_per_task = cpus_per_task
        self.worker_env = {
            **{k: v for k, v in os.environ.items() if k.startswith("SDBENCH_")},
            **(worker_env or {}),
        }
        self.worker_env.pop(MANAGER_PID_ENV, None)  # each actor is its workers' manager
        self.timeline: list[tuple[tuple, float, float]] = []  # (group, first sent, last back)
        self._lanes: list[_Lane] = []
        self._started_ray = False
        self._actor_class = None

    def run(self, cells: Sequence[Cell], on_result: ResultCallback) -> None:
        self._connect()
        try:
            self._check_resources(cells)
            self._run(cells, on_result)
        except BaseException:  # Ctrl-C, or on_result could not journal: abandon the cells in flight
            self.stop()
            raise
        finally:
            self._close()

    def devices(self) -> list[str]:
        """Device ids to plan a run with: the CPU, and cuda:0 when the cluster has a GPU (of
        `gpu_type`). On Ray a device id names a lane, not a physical GPU: planning one GPU id
        measures each cell once, wherever Ray places its group."""
        self._connect()
        try:
            has_gpu = any(node["Resources"].get("GPU", 0) >= 1 for node in self._nodes())
        finally:
            self._close()
        return ["cpu", "cuda:0"] if has_gpu else ["cpu"]

    def stop(self) -> None:
        """Abandon the cells in flight: kill every actor (its workers die with it)."""
        for lane in self._lanes:
            self._discard_actor(lane)

    def _connect(self) -> None:
        if self.ray.is_initialized():
            return
        try:
            self.ray.init(address=self.address, log_to_driver=False, logging_level="warning")
        except ConnectionError as error:
            raise SdbenchError(
                f"Cannot reach a Ray cluster at {self.address!r}: {error}. Start one with "
                "`ray start --head`, or pass its address with --ray-address HOST:PORT."
            ) from None
        self._started_ray = True

    def _close(self) -> None:
        for lane in self._lanes:
            if lane.actor is not None:
                lane.actor.close.remote()
                lane.actor = None
        if self._started_ray:
            self.ray.shutdown()
            self._started_ray, self._actor_class = False, None

    def _nodes(self) -> list[dict]:
        """Alive nodes, only those with `gpu_type` GPUs when one is asked for."""
        label = f"accelerator_type:{self.gpu_type}"
        return [
            node
            for node in self.ray.nodes()
            if node.get("Alive") and (not self.gpu_type or label in node["Resources"])
        ]

    def _check_resources(self, cells: Sequence[Cell]) -> None:
        """Refuse a run no node can take: its actors would wait for ever."""
        kinds = {node_device(cell.device) for cell in cells}
        if "cuda:0" in kinds and not any(n["Resources"].get("GPU", 0) >= 1 for n in self._nodes()):
            types = sorted(
                key.split(":", 1)[1]
                for node in self.ray.nodes()
                for key in node["Resources"]
                if key.startswith("accelerator_type:")
            )
            wanted = f"GPUs of type {self.gpu_type}" if self.gpu_type else "GPUs"
            raise BadInput(
                f"No node of the Ray cluster has {wanted}; GPU types there: "
                f"{', '.join(types) or 'none'}. Pass one of them with --gpu-type, or run on the CPU."
            )
        if "cpu" in kinds and not any(
            node["Resources"].get("CPU", 0) >= self.cpus_per_task for node in self.ray.nodes()
        ):
            raise BadInput(
                f"No node of the Ray cluster has {self.cpus_per_task} free CPUs for a CPU cell."
            )

    def _run(self, cells: Sequence[Cell], on_result: ResultCallback) -> None:
        """Every group at once (Ray queues what the cluster cannot take yet); rows as they come."""
        self._lanes = [_Lane(deque(group), group=group[0].group) for group in group_cells(cells)]
        in_flight: dict[object, _Lane] = {}
        for lane in self._lanes:
            self._send_next(lane, in_flight, on_result)
        while in_flight:
            ready, _ = self.ray.wait(list(in_flight), num_returns=1)
            lane = in_flight.pop(ready[0])
            cell = lane.cells[0]
            try:
                result, environment = self.ray.get(ready[0])
            except self.ray.exceptions.RayError as error:
                self._discard_actor(lane)
                lane.attempts += 1
                if lane.attempts < MAX_ATTEMPTS:
                    self._send_next(lane, in_flight, on_result)  # the same cell, a fresh actor
                    continue
                # The node it died on is unknown: null host facts, not the driver's.
                result, environment = (
                    _lost_row(error, lane.attempts),
                    dict.fromkeys(host_environment()),
                )
            lane.cells.popleft()
            lane.attempts, lane.last_received_s = 0, time.monotonic()
            self.oom.record(cell, result["status"])
            on_result(cell, result, environment)
            self._send_next(lane, in_flight, on_result)

    def _send_next(self, lane: _Lane, in_flight: dict, on_result: ResultCallback) -> None:
        """Send the lane's next cell to its actor (started if needed); record skipped cells."""
        while lane.cells:
            cell = lane.cells[0]
            reason = self.oom.skip_reason(cell)
            if reason:
                lane.cells.popleft()
                on_result(cell, {"status": "oom", "error": reason}, {})
                continue
            if lane.actor is None:
                lane.actor = self._new_actor(cell)
            in_flight[lane.actor.measure.remote(cell.to_dict(), self.measure.__dict__)] = lane
            lane.first_sent_s = lane.first_sent_s or time.monotonic()
            return
        if lane.actor is not None:
            lane.actor.close.remote()  # the handle is dropped: Ray ends the actor after close
            lane.actor = None
        if lane.first_sent_s is not None:
            self.timeline.append((lane.group, lane.first_sent_s, lane.last_received_s))

    def _new_actor(self, cell: Cell):
        options: dict = {"num_cpus": self.cpus_per_task, "max_restarts": 0}
        if node_device(cell.device) != "cpu":
            options.update(num_cpus=1, num_gpus=1)
            if self.gpu_type:
                options["accelerator_type"] = self.gpu_type
        if self._actor_class is None:
            self._actor_class = self.ray.remote(GroupRunner)
        return self._actor_class.options(**options).remote(self.worker_env)

    def _discard_actor(self, lane: _Lane) -> None:
        if lane.actor is not None:
            self.ray.kill(lane.actor)
            lane.actor = None


def _lost_row(error: BaseException, attempts: int) -> dict:
    lines = str(error).strip().splitlines()
    what = lines[0][:300] if lines else type(error).__name__
    return {
        "status": "error",
        "error": f"ray: the task measuring this cell failed {attempts} times, each on a fresh "
        f"actor ({type(error).__name__}: {what})",
    }
