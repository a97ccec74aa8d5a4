"""The `serve` stage in a worker: whole-image requests through the serving loop on one device.

One request is one image: text encoding, the cell's steps and the VAE decode at the cell's
resolution (the `pipeline` call at batch b for a batch of b requests). Before serving, every
batch size 1..max_batch is warmed up and timed; rate "auto" uses those times in the simulator
to pick the highest rate whose p99 meets the SLO, then serves it for real (stepping down, a
bounded number of times, if the real p99 misses). The row keeps every request's latency.
"""

from __future__ import annotations

import time

from sdbench.cell import Cell, Measure, as_pipeline
from sdbench.models.workload import build_workload
from sdbench.runner import memory
from sdbench.runner.memory_modes import apply_memory
from sdbench.runner.quantise import apply_quant
from sdbench.runner.state import WorkerState
from sdbench.serving.server import (
    CALIBRATION_CALLS,
    ServeLog,
    open_loop_arrivals,
    run_server,
    serve_columns,
)
from sdbench.serving.simulate import LatencyCurve, max_rate_within_slo
from sdbench.stats import summarize

TIME_BUDGET_SHARE = 0.8  # of the cell timeout: the manager must never have to kill a serve cell
AUTO_ATTEMPTS = 3  # real runs an "auto" cell may make, each at a lower rate than the last
AUTO_STEP_DOWN = 0.8


def serve_cell(cell: Cell, measure: Measure, state: WorkerState) -> dict:
    """The measured fields of a serve cell's row."""
    began = time.perf_counter()
    workloads = {}
    for batch in range(1, cell.batch_size + 1):
        workloads[batch] = build_workload(as_pipeline(cell, batch), state.models)
        apply_quant(workloads[batch])
        apply_memory(workloads[batch])
    memory.reset_peaks(cell.device)

    def run_batch(size: int) -> None:
        workloads[size].call()
        workloads[size].synchronize()

    curve = calibrate(run_batch, cell.batch_size, max(1, measure.warmup))
    spent_s = time.perf_counter() - began
    budget_s = measure.cell_timeout_s * TIME_BUDGET_SHARE - spent_s
    if budget_s <= 0:
        return {
            "status": "timeout",
            "error": f"building and warming up every batch size took {spent_s:.0f} s of the "
            f"cell's {measure.cell_timeout_s:g} s: no time was left to serve. Raise [measure] "
            "cell_timeout_s or lower [serve] max_batch.",
            "batch_curve_ms": [1000 * s for s in curve.mean_s],
        }
    if cell.serve_mode == "auto":
        return _serve_auto(cell, run_batch, curve, budget_s, state)
    log, window = _serve_once(cell, run_batch, cell.rate_rps, curve, budget_s, state)
    return serve_row(cell, log, window, curve, cell.rate_rps)


def calibrate(run_batch, max_batch: int, warmup: int) -> LatencyCurve:
    """Warm every batch size up, then time it: the median of a few calls per size."""
    medians = []
    for size in range(1, max_batch + 1):
        for _ in range(warmup):
            run_batch(size)
        times_ms = []
        for _ in range(CALIBRATION_CALLS):
            begin = time.perf_counter()
            run_batch(size)
            times_ms.append(1000 * (time.perf_counter() - begin))
        medians.append(summarize(times_ms).median_ms / 1000.0)
    return LatencyCurve(tuple(medians))


def _serve_once(
    cell: Cell, run_batch, rate_rps: float | None, curve: LatencyCurve, budget_s: float, state
) -> tuple[ServeLog, dict]:
    """One real serving run at `rate_rps` (or the cell's closed loop) within `budget_s`."""
    drain_s = max(2 * cell.slo_p99_s, 2 * curve.seconds(cell.batch_size))
    arrivals: list[float] = []
    if cell.serve_mode == "closed":
        span_s = cell.duration_s if cell.duration_s is not None else budget_s
    else:
        arrivals = open_loop_arrivals(rate_rps, cell.serve_seed, cell.duration_s, cell.requests)
        span_s = arrivals[-1] if arrivals else 0.0
    telemetry = state.telemetry["backend"]
    telemetry.start()
    log = run_server(
        run_batch, max_batch=cell.batch_size, max_wait_s=cell.max_wait_ms / 1000.0,
        stop_at_s=max(1e-3, min(span_s + drain_s, budget_s)), arrival_s=arrivals,
        concurrency=cell.concurrency, duration_s=cell.duration_s, requests=cell.requests,
    )  # fmt: skip
    return log, telemetry.stop()


def _serve_auto(cell: Cell, run_batch, curve: LatencyCurve, budget_s: float, state) -> dict:
    """Simulate with the calibrated curve for the highest rate within the SLO, then serve it."""
    wait_s = cell.max_wait_ms / 1000.0
    rate = max_rate_within_slo(curve, cell.slo_p99_s, max_batch=cell.batch_size, max_wait_s=wait_s)
    if rate <= 0:
        return {
            "status": "error",
            "error": f"no rate meets slo_p99_s = {cell.slo_p99_s:g} s: one request alone takes "
            f"{curve.seconds(1):.3g} s here. Raise [serve] slo_p99_s.",
            "batch_curve_ms": [1000 * s for s in curve.mean_s],
        }
    tried: list[float] = []
    began = time.perf_counter()
    for _ in range(AUTO_ATTEMPTS):
        left_s = budget_s - (time.perf_counter() - began)
        if tried and left_s < budget_s / AUTO_ATTEMPTS:  # too little time for a fair try
            break
        tried.append(rate)
        log, window = _serve_once(cell, run_batch, rate, curve, left_s, state)
        row = serve_row(cell, log, window, curve, rate)
        if row["slo_ok"]:
            break
        rate *= AUTO_STEP_DOWN
    row["auto_rates_rps"] = tried
    return row


def serve_row(
    cell: Cell, log: ServeLog, window: dict, curve: LatencyCurve, offered_rps: float | None
) -> dict:
    """The row: every served latency as samples_ms, the serving figures, memory and energy."""
    row: dict = {"status": "ok", "error": None}
    latencies_ms = (1000 * log.latency_s).tolist()
    if latencies_ms:
        row.update(summarize(latencies_ms).as_columns())
    row.update(serve_columns(log, max_batch=cell.batch_size, slo_p99_s=cell.slo_p99_s))
    if offered_rps is None:  # a closed loop offers what its clients sent
        offered_rps = (row["requests_served"] + row["requests_unserved"]) / row["serve_wall_s"]
    row["offered_rps"] = offered_rps
    row["images_per_s"] = row["throughput_rps"]
    row["batch_curve_ms"] = [1000 * s for s in curve.mean_s]
    row.update(memory.peaks(cell.device))
    row.update(window)
    energy_j = row.get("energy_j")
    served = row["requests_served"]
    row["energy_per_image_j"] = energy_j / served if energy_j is not None and served else None
    row["warnings"] = _warnings(row, cell)
    return row


def _warnings(row: dict, cell: Cell) -> list[str]:
    notes = []
    if row["queue_unbounded"]:
        notes.append(
            f"the device could not keep up: {row['requests_unserved']} requests were still queued "
            f"at the time limit (the queue grows without bound at {row['offered_rps']:.3g} "
            "requests/s); p50/p90/p99 count them at their wait so far, a lower bound"
        )
    if not row["requests_served"]:
        notes.append("no request was served: lengthen duration_s or raise the rate")
    return notes
