"""The discrete-event simulation of the dynamic batcher: semantics and speed."""

from __future__ import annotations

import time

import numpy as np
import pytest

from servingopt.model import LatencyProfile, poisson_arrivals_ms, simulate_batching

GPU = LatencyProfile.from_coefficients(5.0, 1.0)


def test_hand_checked_trace() -> None:
    # t(b) = 5 + b; B = 3, D = 2
    arrivals = [0.0, 1.0, 1.5, 3.0, 20.0, 30.0, 30.5, 30.6, 30.7]
    res = simulate_batching(arrivals, GPU, 3, 2.0)
    # batch 1: oldest 0.0, fills at 1.5 (3 requests) -> 1.5 + 8 = 9.5
    # batch 2: 3.0 alone; server free at 9.5 > 3 + 2 -> dispatch 9.5, + 6 = 15.5
    # batch 3: 20.0 alone, timer to 22.0, + 6 = 28.0
    # batch 4: 30.0, 30.5, 30.6 fill at 30.6 -> 38.6
    # batch 5: 30.7 waits for the server (38.6 > 32.7): 38.6 + 6 = 44.6
    assert res.batch_sizes.tolist() == [3, 1, 1, 3, 1]
    expected_done = [9.5] * 3 + [15.5, 28.0] + [38.6] * 3 + [44.6]
    np.testing.assert_allclose(res.latencies_ms, np.array(expected_done) - arrivals)


def test_no_batching_is_fifo_single_server() -> None:
    res = simulate_batching([0.0, 0.0, 0.0], GPU, 1, 10.0)
    np.testing.assert_allclose(res.latencies_ms, [6.0, 12.0, 18.0])


def test_zero_delay_dispatches_what_is_waiting() -> None:
    res = simulate_batching([0.0, 1.0, 2.0, 3.0], GPU, 4, 0.0)
    # first alone at 0 (done 6), then the three that waited go together
    assert res.batch_sizes.tolist() == [1, 3]


def test_md1_mean_matches_pollaczek_khinchine() -> None:
    # B = 1, deterministic service s: mean sojourn = s + rho s / (2 (1 - rho))
    rho, s = 0.6, 6.0
    arr = poisson_arrivals_ms(rho * 1000 / s, 200_000, np.random.default_rng(3))
    res = simulate_batching(arr, GPU, 1, 0.0)
    expected = s + rho * s / (2 * (1 - rho))
    assert res.mean_ms(warmup=0.01) == pytest.approx(expected, rel=0.03)
    assert res.utilisation == pytest.approx(rho, rel=0.02)


def test_invariants_on_random_traffic() -> None:
    arr = poisson_arrivals_ms(500.0, 20_000, np.random.default_rng(5))
    res = simulate_batching(arr, GPU, 8, 3.0)
    assert res.batch_sizes.max() <= 8
    assert res.batch_sizes.sum() == arr.size
    assert np.all(res.latencies_ms >= GPU.service_time_table(8)[1] - 1e-9)


def test_jitter_keeps_mean_service() -> None:
    arr = np.arange(0.0, 50_000.0, 50.0)  # never queues
    res = simulate_batching(arr, GPU, 1, 0.0, service_jitter_cv=0.3, rng=np.random.default_rng(1))
    assert res.mean_ms() == pytest.approx(6.0, rel=0.03)
    assert np.std(res.latencies_ms) / 6.0 == pytest.approx(0.3, rel=0.15)


def test_hundred_thousand_requests_is_fast() -> None:
    arr = poisson_arrivals_ms(150.0, 100_000, np.random.default_rng(0))
    t0 = time.perf_counter()
    simulate_batching(arr, GPU, 1, 0.0)  # worst case: one loop turn per request
    assert time.perf_counter() - t0 < 2.0


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        simulate_batching([1.0, 0.0], GPU, 2, 1.0)
    with pytest.raises(ValueError):
        simulate_batching([0.0], GPU, 0, 1.0)
    with pytest.raises(ValueError):
        simulate_batching([0.0], GPU, 2, 1.0, service_jitter_cv=0.2)
    assert simulate_batching([], GPU, 2, 1.0).latencies_ms.size == 0
