"""The serving simulator against queueing theory and against hand-worked batching cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sdbench.serving.simulate import LatencyCurve, max_rate_within_slo, simulate


def erlang_c(servers: int, offered_erlangs: float) -> float:
    """P(an arrival waits) in M/M/c: the Erlang C formula."""
    below = sum(offered_erlangs**k / math.factorial(k) for k in range(servers))
    top = offered_erlangs**servers / math.factorial(servers) * servers / (servers - offered_erlangs)
    return top / (below + top)


@pytest.mark.parametrize("utilisation", [0.3, 0.5, 0.7, 0.9])
def test_deterministic_service_reproduces_the_md1_mean_wait(utilisation):
    service_s = 2.0
    result = simulate(
        LatencyCurve((service_s,)), rate_rps=utilisation / service_s, requests=600_000, seed=11
    )
    # Pollaczek-Khinchine for deterministic service: Wq = rho * S / (2 (1 - rho)).
    expected = utilisation * service_s / (2 * (1 - utilisation))
    assert result.queue_s.mean() == pytest.approx(expected, rel=0.03)
    assert result.latency_s.mean() == pytest.approx(expected + service_s, rel=0.03)
    assert result.utilisation == pytest.approx(utilisation, rel=0.02)


@pytest.mark.parametrize("servers", [1, 2, 3, 4])
def test_exponential_service_reproduces_the_erlang_c_waiting_probability(servers):
    curve = LatencyCurve((1.0,), variation="exponential")
    result = simulate(curve, rate_rps=0.75 * servers, requests=300_000, servers=servers, seed=7)
    waited = float((result.queue_s > 0).mean())
    assert waited == pytest.approx(erlang_c(servers, 0.75 * servers), abs=0.01)
    # and the M/M/c mean wait, C(c, a) / (c mu - lambda)
    expected_wait = erlang_c(servers, 0.75 * servers) / (servers - 0.75 * servers)
    assert result.queue_s.mean() == pytest.approx(expected_wait, rel=0.05)


@pytest.mark.parametrize("variation", ["fixed", "exponential"])
def test_the_vectorised_one_gpu_path_matches_the_event_loop(variation):
    from sdbench.serving import simulate as module

    curve = LatencyCurve((1.0,), variation=variation)
    arrivals = module.poisson_arrivals(0.8, 20_000, seed=2)
    draws = module._service_draws(curve, np.random.default_rng(5), len(arrivals))
    fast = module._serve_one_by_one(arrivals, curve, draws)
    loop = module._serve(arrivals.tolist(), curve, draws, 1, 0.0, 1, False, len(arrivals))
    for vectorised, looped in zip(fast, loop, strict=True):
        assert np.allclose(vectorised, looped)


def test_a_batch_leaves_when_full_without_waiting_for_the_timeout():
    curve = LatencyCurve((1.0, 1.5, 2.0))
    result = simulate(curve, arrival_s=[0.0, 0.1, 0.2, 5.0], max_batch=3, max_wait_s=1.0)
    assert result.batch_sizes.tolist() == [3, 1]
    assert result.batch_start_s.tolist() == pytest.approx([0.2, 6.0])  # full at 0.2; lone at 5+1
    assert result.latency_s.tolist() == pytest.approx([2.2, 2.1, 2.0, 2.0])


def test_a_batch_leaves_when_its_oldest_request_has_waited_max_wait():
    curve = LatencyCurve((1.0, 1.5, 2.0, 2.5))
    result = simulate(curve, arrival_s=[0.0, 0.3, 0.7, 3.0], max_batch=4, max_wait_s=0.5)
    assert result.batch_sizes.tolist() == [2, 1, 1]
    # 0.7 is ready at 1.2 but the GPU is busy with the first batch until 0.5 + 1.5
    assert result.batch_start_s.tolist() == pytest.approx([0.5, 2.0, 3.5])
    assert result.queue_s.tolist() == pytest.approx([0.5, 0.2, 1.3, 0.5])
    assert result.batch_size_counts(4) == [2, 1, 0, 0]


def test_a_busy_gpu_takes_everything_that_queued_meanwhile_up_to_max_batch():
    curve = LatencyCurve((4.0, 5.0))
    result = simulate(curve, arrival_s=[0.0, 1.0, 2.0, 3.0], max_batch=2, max_wait_s=0.0)
    assert result.batch_sizes.tolist() == [1, 2, 1]
    assert result.batch_start_s.tolist() == pytest.approx([0.0, 4.0, 9.0])


def test_two_gpus_share_one_queue():
    result = simulate(LatencyCurve((10.0,)), arrival_s=[0.0, 1.0, 2.0], servers=2)
    assert result.batch_start_s.tolist() == pytest.approx([0.0, 1.0, 10.0])
    assert result.queue_s.tolist() == pytest.approx([0.0, 0.0, 8.0])


def test_closed_loop_clients_keep_the_gpu_busy_with_full_batches():
    curve = LatencyCurve((1.0, 1.6, 2.2, 2.8))
    result = simulate(curve, concurrency=4, requests=4_000, max_batch=4, max_wait_s=0.05)
    # Four clients, batches of four: each request takes one batch time, the GPU never idles.
    assert result.batch_size_counts(4) == [0, 0, 0, 1000]
    assert result.summary()["p50_s"] == pytest.approx(2.8)
    assert result.throughput_rps == pytest.approx(4 / 2.8, rel=1e-6)
    assert result.utilisation == pytest.approx(1.0)


def test_a_rate_above_capacity_is_reported_unstable_and_its_latency_grows():
    curve = LatencyCurve((1.0, 1.5))  # at most 2 / 1.5 = 1.33 requests/s
    stable = simulate(curve, rate_rps=1.0, requests=20_000, max_batch=2, max_wait_s=0.1)
    overloaded = simulate(curve, rate_rps=1.6, requests=20_000, max_batch=2, max_wait_s=0.1)
    assert stable.stable and not overloaded.stable
    assert overloaded.capacity_rps == pytest.approx(2 / 1.5)
    assert overloaded.percentile_s(99) > 100 * stable.percentile_s(99)


def test_the_same_seed_gives_the_same_run():
    curve = LatencyCurve((1.0, 1.5), variation="exponential")
    first = simulate(curve, rate_rps=1.0, requests=5_000, max_batch=2, seed=3)
    again = simulate(curve, rate_rps=1.0, requests=5_000, max_batch=2, seed=3)
    other = simulate(curve, rate_rps=1.0, requests=5_000, max_batch=2, seed=4)
    assert np.array_equal(first.latency_s, again.latency_s)
    assert not np.array_equal(first.latency_s, other.latency_s)


def test_auto_rate_is_the_highest_rate_whose_p99_meets_the_slo():
    curve = LatencyCurve.from_points({1: 1.0, 4: 2.2}, 4)
    rate = max_rate_within_slo(curve, 6.0, max_batch=4, max_wait_s=0.2, requests=20_000)
    assert 0 < rate < curve.capacity_rps(4)

    def p99(r):
        return simulate(
            curve, rate_rps=r, requests=20_000, max_batch=4, max_wait_s=0.2
        ).percentile_s(99)

    assert p99(rate) <= 6.0 * 1.02
    assert p99(rate * 1.05) > 6.0


def test_auto_rate_is_zero_when_one_request_alone_misses_the_slo():
    assert max_rate_within_slo(LatencyCurve((3.0,)), 2.0) == 0.0


def test_a_curve_through_measured_points_interpolates_and_extends_the_last_slope():
    curve = LatencyCurve.from_points({2: 2.0, 4: 3.0}, 6)
    assert curve.mean_s == pytest.approx((1.0, 2.0, 2.5, 3.0, 3.5, 4.0))
    assert LatencyCurve.from_points({1: 1.5}, 3).mean_s == pytest.approx((1.5, 3.0, 4.5))
    assert curve.capacity_rps() == pytest.approx(6 / 4.0)


def test_a_curve_from_observed_batches_draws_their_own_times():
    curve = LatencyCurve.from_batches([1, 1, 2, 2, 2], [1.0, 1.2, 1.5, 1.7, 1.6], max_batch=3)
    assert curve.mean_s == pytest.approx((1.1, 1.6, 2.1))
    result = simulate(curve, rate_rps=0.2, requests=3_000, max_batch=2, seed=1)
    lone = result.latency_s[result.queue_s == 0]
    assert set(np.round(lone, 6)) <= {1.0, 1.2, 1.5, 1.6, 1.7}


@pytest.mark.parametrize("bad", [(), (0.0,), (1.0, -1.0), (math.inf,)])
def test_a_curve_refuses_latencies_that_are_not_positive(bad):
    with pytest.raises(ValueError):
        LatencyCurve(bad)
