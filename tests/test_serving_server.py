"""The real-time serving loop: the simulator's policy exactly, and an overload that stops in time."""

from __future__ import annotations

import numpy as np
import pytest

from sdbench.serving.server import open_loop_arrivals, run_server, serve_columns
from sdbench.serving.simulate import LatencyCurve, simulate


class VirtualClock:
    """Time that moves only when the loop sleeps or a batch runs: the loop, without the noise."""

    def __init__(self, curve: LatencyCurve):
        self.now, self.curve = 0.0, curve

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def run_batch(self, size: int) -> None:
        self.now += self.curve.seconds(size)


def serve_virtually(curve: LatencyCurve, **kwargs):
    clock = VirtualClock(curve)
    return run_server(clock.run_batch, clock=clock.clock, sleep=clock.sleep, **kwargs)


@pytest.mark.parametrize(
    ("rate", "max_batch", "wait_s"), [(0.8, 1, 0.0), (2.5, 4, 0.2), (1.2, 3, 0.05)]
)
def test_the_serving_loop_batches_exactly_as_the_simulator(rate, max_batch, wait_s):
    curve = LatencyCurve.from_points({1: 0.5, 4: 1.4}, 4)
    arrivals = open_loop_arrivals(rate, seed=3, duration_s=300.0, requests=None)
    log = serve_virtually(
        curve, max_batch=max_batch, max_wait_s=wait_s, stop_at_s=1e6, arrival_s=arrivals
    )
    simulated = simulate(curve, arrival_s=arrivals, max_batch=max_batch, max_wait_s=wait_s)
    assert log.batch_sizes == simulated.batch_sizes.tolist()
    assert np.allclose(log.batch_start_s, simulated.batch_start_s)
    assert np.allclose(np.sort(log.latency_s), np.sort(simulated.latency_s))


def test_a_closed_loop_keeps_its_clients_and_stops_sending_after_the_duration():
    curve = LatencyCurve((1.0, 1.5))
    log = serve_virtually(
        curve, max_batch=2, max_wait_s=0.0, stop_at_s=100.0, concurrency=2, duration_s=10.0
    )
    # two clients, batches of two taking 1.5 s: ends at 1.5, 3.0, ... the last sent before 10 s
    assert set(log.batch_sizes) == {2}
    assert log.batch_end_s[-1] == pytest.approx(10.5)
    assert not log.unserved_arrival_s


def test_an_overloaded_server_stops_at_its_time_limit_and_reports_the_queue_unbounded():
    curve = LatencyCurve((1.0,))  # one request per second at most
    arrivals = open_loop_arrivals(3.0, seed=1, duration_s=20.0, requests=None)
    log = serve_virtually(curve, max_batch=1, max_wait_s=0.0, stop_at_s=24.0, arrival_s=arrivals)
    assert log.hit_time_limit and log.stopped_at_s == pytest.approx(24.0, abs=1.0)
    columns = serve_columns(log, max_batch=1, slo_p99_s=5.0)
    assert columns["queue_unbounded"] is True and columns["slo_ok"] is False
    assert columns["requests_served"] == 24
    assert columns["requests_unserved"] == len(arrivals) - 24
    assert columns["throughput_rps"] == pytest.approx(1.0, rel=0.05)
    # unserved requests count at their wait so far: a lower bound of the p99 (served-only is none)
    waits = [log.stopped_at_s - t for t in log.unserved_arrival_s]
    everyone = np.concatenate([log.latency_s, waits])
    assert columns["p99_ms"] == pytest.approx(1000 * np.percentile(everyone, 99))
    assert columns["p99_ms"] > 5000.0


def test_serve_columns_summarise_latency_queue_batches_and_utilisation():
    curve = LatencyCurve((1.0, 1.5, 2.0))
    log = serve_virtually(
        curve, max_batch=3, max_wait_s=0.5, stop_at_s=100.0, arrival_s=[0.0, 0.1, 0.2, 10.0]
    )
    columns = serve_columns(log, max_batch=3, slo_p99_s=2.5)
    assert columns["batch_size_counts"] == [1, 0, 1]
    assert columns["batch_ms"] == pytest.approx([2000.0, 1000.0])
    assert columns["queue_ms"] == pytest.approx(1000 * np.mean([0.2, 0.1, 0.0, 0.5]))
    assert columns["p50_ms"] == pytest.approx(1000 * np.percentile([2.2, 2.1, 2.0, 1.5], 50))
    assert columns["utilisation"] == pytest.approx(3.0 / 11.5)
    assert columns["slo_ok"] is True and columns["queue_unbounded"] is False


def test_open_loop_arrivals_are_seeded_and_fill_the_duration():
    first = open_loop_arrivals(5.0, seed=2, duration_s=100.0, requests=None)
    assert first == open_loop_arrivals(5.0, seed=2, duration_s=100.0, requests=None)
    assert first != open_loop_arrivals(5.0, seed=3, duration_s=100.0, requests=None)
    assert max(first) < 100.0 and len(first) == pytest.approx(500, rel=0.15)
    assert len(open_loop_arrivals(5.0, seed=2, duration_s=None, requests=37)) == 37
