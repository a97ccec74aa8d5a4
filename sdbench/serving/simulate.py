"""A discrete-event simulator of an image server: N GPUs behind one FIFO queue, dynamic batching.

Pure numpy and the standard library (no torch). The policy is the one the `serve` stage runs:
a free GPU takes the oldest waiting requests as one batch as soon as `max_batch` are waiting, or
once the oldest has waited `max_wait_s`, whichever comes first (a batch never waits longer than
that for company). A batch of b requests takes `LatencyCurve.seconds(b)`.

The loop steps once per batch, not per event: a batch's start is the later of the earliest free
GPU and the moment its batch is ready, and its size is the number of arrivals by then (a bisect
in the sorted arrival times). Per-request figures are computed afterwards, vectorised.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

PERCENTILES = (50.0, 90.0, 99.0)


@dataclass(frozen=True)
class LatencyCurve:
    """Seconds one batch takes, per batch size 1..len(mean_s); how a batch's time varies.

    `variation`: "fixed" (every batch of b takes mean_s[b-1]), "exponential" (exponentially
    distributed around it: the M/M/c textbook case) or "samples" (drawn from `samples_s[b-1]`,
    observed batch times, falling back to the mean for a size never observed).
    """

    mean_s: tuple[float, ...]
    variation: str = "fixed"
    samples_s: tuple[tuple[float, ...], ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if not self.mean_s or any(not (s > 0 and math.isfinite(s)) for s in self.mean_s):
            raise ValueError(f"batch latencies must be positive and finite, got {self.mean_s}")
        if self.variation not in ("fixed", "exponential", "samples"):
            raise ValueError(f"unknown variation {self.variation!r}")

    @property
    def max_batch(self) -> int:
        return len(self.mean_s)

    def seconds(self, batch: int) -> float:
        return self.mean_s[batch - 1]

    def capacity_rps(self, max_batch: int | None = None) -> float:
        """The most requests per second one GPU can finish: its best images per batch-second."""
        sizes = range(1, min(max_batch or self.max_batch, self.max_batch) + 1)
        return max(b / self.mean_s[b - 1] for b in sizes)

    @classmethod
    def from_points(cls, points: Mapping[int, float], max_batch: int) -> LatencyCurve:
        """A curve through measured (batch size, seconds) points, linear between them.

        Beyond the largest measured size the last segment's slope continues; with one point
        only, a batch of b takes b times as long (no batching gain is assumed unmeasured).
        """
        sizes = sorted(b for b in points if b >= 1)
        if not sizes:
            raise ValueError("no batch latencies to build a curve from")
        xs = np.array(sizes, dtype=float)
        ys = np.array([points[b] for b in sizes], dtype=float)
        wanted = np.arange(1, max_batch + 1, dtype=float)
        if len(sizes) == 1:
            values = ys[0] * wanted / xs[0]
        else:
            values = np.interp(wanted, xs, ys)
            slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
            beyond = wanted > xs[-1]
            values[beyond] = ys[-1] + max(slope, 0.0) * (wanted[beyond] - xs[-1])
            below = wanted < xs[0]  # smaller than any measured batch: no faster per image
            values[below] = ys[0] * wanted[below] / xs[0]
        return cls(tuple(float(v) for v in values))

    @classmethod
    def from_batches(
        cls, batch_sizes: Sequence[int], batch_s: Sequence[float], max_batch: int
    ) -> LatencyCurve:
        """The curve a serve run observed: every batch's size and seconds, drawn from at random."""
        by_size: dict[int, list[float]] = {}
        for size, seconds in zip(batch_sizes, batch_s, strict=True):
            by_size.setdefault(int(size), []).append(float(seconds))
        means = cls.from_points({b: float(np.median(v)) for b, v in by_size.items()}, max_batch)
        samples = tuple(tuple(by_size.get(b, ())) for b in range(1, max_batch + 1))
        return cls(means.mean_s, "samples", samples)


@dataclass(frozen=True)
class SimResult:
    """Every request's arrival, queueing delay and latency; every batch's size, start and end."""

    arrival_s: np.ndarray
    queue_s: np.ndarray
    latency_s: np.ndarray
    batch_sizes: np.ndarray
    batch_start_s: np.ndarray
    batch_end_s: np.ndarray
    servers: int
    offered_rps: float | None
    capacity_rps: float

    def percentile_s(self, q: float) -> float:
        return float(np.percentile(self.latency_s, q))

    @property
    def makespan_s(self) -> float:
        return float(self.batch_end_s.max() - min(self.arrival_s.min(), 0.0))

    @property
    def throughput_rps(self) -> float:
        return len(self.latency_s) / self.makespan_s

    @property
    def utilisation(self) -> float:
        busy = float((self.batch_end_s - self.batch_start_s).sum())
        return busy / (self.servers * self.makespan_s)

    @property
    def stable(self) -> bool:
        """Whether the offered load is below what the GPUs can finish (else the queue grows
        without bound, however long one simulates)."""
        return self.offered_rps is None or self.offered_rps < self.capacity_rps

    def batch_size_counts(self, max_batch: int) -> list[int]:
        """How many batches had 1, 2, ..., max_batch requests."""
        return np.bincount(self.batch_sizes, minlength=max_batch + 1)[1:].tolist()

    def summary(self) -> dict:
        p50, p90, p99 = np.percentile(self.latency_s, PERCENTILES)
        return {
            "p50_s": float(p50),
            "p90_s": float(p90),
            "p99_s": float(p99),
            "mean_s": float(self.latency_s.mean()),
            "queue_s": float(self.queue_s.mean()),
            "throughput_rps": self.throughput_rps,
            "utilisation": self.utilisation,
            "mean_batch": float(self.batch_sizes.mean()),
            "stable": self.stable,
        }


def poisson_arrivals(rate_rps: float, count: int, seed: int = 0) -> np.ndarray:
    """`count` arrival times (seconds from 0) of a Poisson process of `rate_rps`."""
    if not rate_rps > 0:
        raise ValueError(f"rate must be positive, got {rate_rps}")
    gaps = np.random.default_rng(seed).standard_exponential(count)
    return np.cumsum(gaps) / rate_rps


def simulate(
    curve: LatencyCurve,
    *,
    rate_rps: float | None = None,
    requests: int = 100_000,
    max_batch: int = 1,
    max_wait_s: float = 0.0,
    servers: int = 1,
    concurrency: int | None = None,
    seed: int = 0,
    arrival_s: Sequence[float] | None = None,
) -> SimResult:
    """Serve `requests` requests: Poisson at `rate_rps`, given `arrival_s`, or a closed loop of
    `concurrency` clients that each send their next request when the previous one returns."""
    if not 1 <= max_batch <= curve.max_batch:
        raise ValueError(f"max_batch {max_batch} outside the curve's 1..{curve.max_batch}")
    if servers < 1 or max_wait_s < 0:
        raise ValueError("servers must be >= 1 and max_wait_s >= 0")
    if concurrency is not None:
        arrivals, offered = [0.0] * min(concurrency, requests), None
    elif arrival_s is not None:
        arrivals = sorted(float(t) for t in arrival_s)
        span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0
        offered = (len(arrivals) - 1) / span if span > 0 else None
    else:
        arrivals, offered = poisson_arrivals(rate_rps, requests, seed).tolist(), rate_rps
    draws = _service_draws(curve, np.random.default_rng(seed + 1), max(requests, len(arrivals)))
    closed = concurrency is not None
    if servers == 1 and max_batch == 1 and not closed:
        sizes, starts, ends = _serve_one_by_one(np.asarray(arrivals), curve, draws)
    else:
        sizes, starts, ends = _serve(
            arrivals, curve, draws, max_batch, max_wait_s, servers, closed, requests
        )
    arrival = np.asarray(arrivals[: int(np.sum(sizes))])
    batch_of = np.repeat(np.arange(len(sizes)), sizes)
    start, end = np.asarray(starts), np.asarray(ends)
    return SimResult(
        arrival_s=arrival,
        queue_s=start[batch_of] - arrival,
        latency_s=end[batch_of] - arrival,
        batch_sizes=np.asarray(sizes, dtype=np.int64),
        batch_start_s=start,
        batch_end_s=end,
        servers=servers,
        offered_rps=offered,
        capacity_rps=servers * curve.capacity_rps(max_batch),
    )


def _service_draws(curve: LatencyCurve, rng: np.random.Generator, batches: int):
    """Per batch index, how its time is drawn: (scale factors, sample picks), drawn up front.

    A batch k of size b takes mean_s[b-1] * scale[k] ("fixed": scale 1, "exponential": an
    exponential draw), or for "samples" the observed time pools[b-1][int(pick[k] * len)].
    """
    if curve.variation == "exponential":
        return rng.standard_exponential(batches).tolist(), None, None
    if curve.variation == "samples":
        pools = [list(p) if p else [curve.mean_s[b]] for b, p in enumerate(curve.samples_s)]
        pools += [[m] for m in curve.mean_s[len(pools) :]]
        return None, rng.random(batches).tolist(), pools
    return None, None, None


def _serve_one_by_one(arrivals: np.ndarray, curve: LatencyCurve, draws: tuple):
    """One GPU, no batching (M/G/1), vectorised with Lindley's recursion: the k-th request ends
    at S_k + max over j <= k of (a_j - S_(j-1)), S being the running sum of service times."""
    scale, pick, pools = draws
    count = len(arrivals)
    if pools is not None:
        pool = np.asarray(pools[0])
        service = pool[(np.asarray(pick[:count]) * len(pool)).astype(np.int64)]
    elif scale:
        service = curve.mean_s[0] * np.asarray(scale[:count])
    else:
        service = np.full(count, curve.mean_s[0])
    total = np.cumsum(service)
    ends = total + np.maximum.accumulate(arrivals - (total - service))
    # Starts from the definition, so a request that found the GPU idle waited exactly zero.
    starts = np.maximum(arrivals, np.concatenate(([-np.inf], ends[:-1])))
    return np.ones(count, dtype=np.int64), starts, starts + service


def _serve(
    arrivals: list[float],
    curve: LatencyCurve,
    draws: tuple,
    max_batch: int,
    max_wait_s: float,
    servers: int,
    closed: bool,
    requests: int,
) -> tuple[list[int], list[float], list[float]]:
    """The batches: sizes, starts, ends. `arrivals` is sorted; a closed loop appends to it.

    Batches start in FIFO order at non-decreasing times, so every arrival a batch could take is
    known when it is formed: in a closed loop new arrivals are the ends of earlier batches.
    The hot loop of the module: locals only, one iteration per batch.
    """
    scale, pick, pools = draws
    means = curve.mean_s
    free = [0.0] * (servers - 1)  # when each other GPU is next free (a heap)
    sizes: list[int] = []
    starts: list[float] = []
    ends: list[float] = []
    heappushpop, bisect_right, insort = heapq.heappushpop, bisect.bisect_right, bisect.insort
    head, index, gpu_free, total = 0, 0, 0.0, len(arrivals)
    while head < total:
        oldest = arrivals[head]
        last = head + max_batch - 1
        full_at = arrivals[last] if last < total else math.inf
        ready = oldest + max_wait_s
        if full_at < ready:
            ready = full_at
        start = gpu_free if gpu_free > ready else ready
        size = bisect_right(arrivals, start, head, last + 1 if last < total else total) - head
        if pools is not None:
            pool = pools[size - 1]
            end = start + pool[int(pick[index] * len(pool))]
        else:
            end = start + (means[size - 1] * scale[index] if scale else means[size - 1])
        gpu_free = heappushpop(free, end) if servers > 1 else end
        sizes.append(size)
        starts.append(start)
        ends.append(end)
        head += size
        index += 1
        if closed:  # each finished request's client sends its next one at once
            for _ in range(min(size, requests - total)):
                insort(arrivals, end)
            total = len(arrivals)
    return sizes, starts, ends


def max_rate_within_slo(
    curve: LatencyCurve,
    slo_p99_s: float,
    *,
    max_batch: int = 1,
    max_wait_s: float = 0.0,
    servers: int = 1,
    requests: int = 20_000,
    seed: int = 0,
    relative_tolerance: float = 0.005,
    max_iterations: int = 40,
) -> float:
    """The highest Poisson rate (requests/s) whose simulated p99 latency is within the SLO.

    A bisection between 0 and the GPUs' capacity, bounded by `max_iterations`; the same unit
    arrival gaps and service draws at every rate (common random numbers) keep p99 monotone in
    the rate. 0.0 when even a lone request misses the SLO.
    """
    capacity = servers * curve.capacity_rps(max_batch)
    if curve.seconds(1) + max_wait_s * (max_batch > 1) > slo_p99_s:
        return 0.0
    unit_gaps = poisson_arrivals(1.0, requests, seed)

    def p99(rate: float) -> float:
        result = simulate(
            curve, arrival_s=unit_gaps / rate, max_batch=max_batch, max_wait_s=max_wait_s,
            servers=servers, seed=seed, requests=requests,
        )  # fmt: skip
        return result.percentile_s(99.0)

    low, high = 0.0, capacity
    for _ in range(max_iterations):
        if high - low <= relative_tolerance * high:
            break
        middle = (low + high) / 2
        low, high = (middle, high) if p99(middle) <= slo_p99_s else (low, middle)
    return low
