"""The serving loop, in real time: seeded arrivals, one FIFO queue, dynamic batching.

No torch here: `run_batch(size)` does the work (the worker passes a whole-image pipeline call),
so the loop is testable with a sleeping stand-in. The policy is the simulator's
(sdbench.serving.simulate): a batch leaves as soon as `max_batch` requests wait, or when the
oldest has waited `max_wait_s`. Arrival times are a schedule against the clock, so requests
"arrive" while a batch runs without any thread. The loop stops when every request is served,
or at `stop_at_s` with whatever is still queued reported unserved: never a hang.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

CALIBRATION_CALLS = 3  # timed calls per batch size after warm-up, before a serve cell serves


@dataclass
class ServeLog:
    """What happened: every batch (size, start, end) and every request's arrival and fate."""

    arrival_s: list[float] = field(default_factory=list)  # served requests, in service order
    start_s: list[float] = field(default_factory=list)  # the start of each one's batch
    end_s: list[float] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)
    batch_start_s: list[float] = field(default_factory=list)
    batch_end_s: list[float] = field(default_factory=list)
    unserved_arrival_s: list[float] = field(default_factory=list)  # still queued at the stop
    stopped_at_s: float = 0.0
    hit_time_limit: bool = False

    @property
    def latency_s(self) -> np.ndarray:
        return np.asarray(self.end_s) - np.asarray(self.arrival_s)

    @property
    def queue_s(self) -> np.ndarray:
        return np.asarray(self.start_s) - np.asarray(self.arrival_s)

    @property
    def batch_s(self) -> np.ndarray:
        return np.asarray(self.batch_end_s) - np.asarray(self.batch_start_s)

    def latency_with_unserved_s(self) -> np.ndarray:
        """Served latencies plus, for each unserved request, how long it had waited at the stop:
        lower bounds that keep a percentile from looking better than it was."""
        waited = self.stopped_at_s - np.asarray(self.unserved_arrival_s, dtype=float)
        return np.concatenate([self.latency_s, waited])


def open_loop_arrivals(
    rate_rps: float, seed: int, duration_s: float | None, requests: int | None
) -> list[float]:
    """Poisson arrival times: `requests` of them, or all that fall within `duration_s`."""
    rng = np.random.default_rng(seed)
    if requests is not None:
        return (np.cumsum(rng.standard_exponential(requests)) / rate_rps).tolist()
    expected = rate_rps * duration_s
    count = int(expected + 6 * math.sqrt(expected) + 10)  # enough gaps to pass duration_s
    times = np.cumsum(rng.standard_exponential(count)) / rate_rps
    return times[times < duration_s].tolist()


def run_server(
    run_batch: Callable[[int], object],
    *,
    max_batch: int,
    max_wait_s: float,
    stop_at_s: float,
    arrival_s: Sequence[float] = (),
    concurrency: int | None = None,
    duration_s: float | None = None,
    requests: int | None = None,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], object] = time.sleep,
) -> ServeLog:
    """Serve the arrivals (or a closed loop of `concurrency` clients that each send their next
    request when their image returns, while within `duration_s` / `requests`)."""
    log = ServeLog()
    closed = concurrency is not None
    future = [0.0] * concurrency if closed else list(arrival_s)  # a heap when closed
    sent = len(future)
    next_open = 0  # open loop: index of the next arrival in `future`
    queue: deque[float] = deque()
    origin = clock()

    def pending() -> float:
        if closed:
            return future[0] if future else math.inf
        return future[next_open] if next_open < len(future) else math.inf

    while True:
        now = clock() - origin
        while pending() <= now:
            queue.append(heapq.heappop(future) if closed else future[next_open])
            next_open += not closed
        if not queue and pending() == math.inf:
            break
        if now >= stop_at_s:
            log.hit_time_limit = bool(queue)
            break
        ready_at = (
            now if len(queue) >= max_batch else (queue[0] + max_wait_s if queue else math.inf)
        )
        if now < ready_at:
            sleep(max(0.0, min(ready_at, pending(), stop_at_s) - now))
            continue
        batch = [queue.popleft() for _ in range(min(max_batch, len(queue)))]
        start = clock() - origin
        run_batch(len(batch))
        end = clock() - origin
        log.batch_sizes.append(len(batch))
        log.batch_start_s.append(start)
        log.batch_end_s.append(end)
        log.arrival_s += batch
        log.start_s += [start] * len(batch)
        log.end_s += [end] * len(batch)
        if closed:
            for _ in batch:
                if _client_sends(end, sent, duration_s, requests):
                    heapq.heappush(future, end)
                    sent += 1
    log.stopped_at_s = clock() - origin
    log.unserved_arrival_s = list(queue)
    return log


def _client_sends(now: float, sent: int, duration_s: float | None, requests: int | None) -> bool:
    if requests is not None:
        return sent < requests
    return duration_s is None or now < duration_s


def serve_columns(log: ServeLog, *, max_batch: int, slo_p99_s: float) -> dict:
    """A serve row's figures from its log (DESIGN.md: Serving); times in ms, rates per second.

    Percentiles count unserved requests at how long they had waited when the run stopped
    (lower bounds), so an overloaded run cannot report a flattering p99.
    """
    served = len(log.end_s)
    everyone_ms = 1000 * log.latency_with_unserved_s()
    wall_s = max(log.stopped_at_s, 1e-9)
    p50, p90, p99 = np.percentile(everyone_ms, [50, 90, 99]) if len(everyone_ms) else [None] * 3
    unbounded = log.hit_time_limit and bool(log.unserved_arrival_s)
    busy_s = float(log.batch_s.sum()) if served else 0.0
    counts = np.bincount(np.asarray(log.batch_sizes, dtype=np.int64), minlength=max_batch + 1)
    return {
        "p50_ms": _number(p50), "p90_ms": _number(p90), "p99_ms": _number(p99),
        "throughput_rps": served / wall_s,
        "queue_ms": float(1000 * log.queue_s.mean()) if served else None,
        "requests_served": served,
        "requests_unserved": len(log.unserved_arrival_s),
        "queue_unbounded": unbounded,
        "slo_ok": bool((not unbounded) and p99 is not None and p99 <= 1000 * slo_p99_s),
        "utilisation": busy_s / wall_s,
        "batch_sizes": [int(b) for b in log.batch_sizes],
        "batch_ms": (1000 * log.batch_s).tolist(),
        "batch_size_counts": counts[1:].tolist(),
        "mean_batch": float(np.mean(log.batch_sizes)) if served else None,
        "serve_wall_s": wall_s,
    }  # fmt: skip


def _number(value) -> float | None:
    return None if value is None else float(value)
