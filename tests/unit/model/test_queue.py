"""servingopt.model.queue: API behaviour and edge cases (accuracy: test_queue_vs_des.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from servingopt.model import (
    LatencyProfile,
    p99_at,
    poisson_arrivals_ms,
    predict,
    predict_table,
    simulate_batching,
    stability_limit_rps,
)

GPU = LatencyProfile.from_coefficients(5.0, 1.0)


def test_zero_and_vanishing_load() -> None:
    idle = predict(GPU, 0.0, 8, 3.0)
    assert idle.p99_latency_ms == idle.mean_latency_ms == pytest.approx(6.0 + 3.0)
    assert idle.utilisation == 0.0
    assert predict(GPU, 0.0, 1, 3.0).p99_latency_ms == pytest.approx(6.0)  # B=1 never waits
    tiny = predict(GPU, 1e-3, 8, 3.0)
    assert tiny.p99_latency_ms == pytest.approx(9.0, rel=1e-3)


def test_unstable_at_and_above_the_limit() -> None:
    limit = stability_limit_rps(GPU, 4)
    assert limit == pytest.approx(4000 / 9)
    for rate in (limit, 2 * limit):
        pred = predict(GPU, rate, 4, 0.0)
        assert not pred.stable
        assert math.isinf(pred.p99_latency_ms) and math.isinf(pred.mean_latency_ms)
    assert math.isfinite(p99_at(GPU, 0.99 * limit, 4, 0.0))


def test_timer_longer_than_any_fill_makes_small_batches_transient() -> None:
    # D = 10 s: every batch fills; states with fewer than B waiting never recur
    pred = predict(GPU, 100.0, 4, 10_000.0)
    assert pred.mean_batch == pytest.approx(4.0, abs=1e-6)
    sim = simulate_batching(
        poisson_arrivals_ms(100.0, 60_000, np.random.default_rng(2)), GPU, 4, 1e4
    )
    assert pred.p99_latency_ms == pytest.approx(sim.quantile_ms(0.99), rel=0.05)


def test_other_quantiles_are_ordered() -> None:
    rate = 0.7 * stability_limit_rps(GPU, 16)
    q50 = predict(GPU, rate, 16, 2.0, quantile=0.5).p99_latency_ms
    q90 = predict(GPU, rate, 16, 2.0, quantile=0.9).p99_latency_ms
    q99 = predict(GPU, rate, 16, 2.0).p99_latency_ms
    q999 = predict(GPU, rate, 16, 2.0, quantile=0.999).p99_latency_ms
    assert q50 < q90 < q99 < q999


def test_predict_table_broadcasts() -> None:
    p99, mean, batch, util = predict_table(GPU, [[100.0], [200.0]], [1, 4, 16], 2.0)
    assert p99.shape == mean.shape == batch.shape == util.shape == (2, 3)
    assert math.isinf(p99[1, 0])  # 200 rps > 166.7 rps without batching
    assert p99[0, 1] == pytest.approx(p99_at(GPU, 100.0, 4, 2.0))
    assert np.all(batch[np.isfinite(p99)] >= 1.0)


def test_large_batches_stay_finite() -> None:
    pred = predict(GPU, 0.5 * stability_limit_rps(GPU, 128), 128, 5.0)
    assert pred.stable and math.isfinite(pred.p99_latency_ms)
    assert 1.0 < pred.mean_batch < 128


@pytest.mark.parametrize(
    ("rate", "b", "d", "q"),
    [
        (-1.0, 4, 1.0, 0.99),
        (math.nan, 4, 1.0, 0.99),
        (10.0, 0, 1.0, 0.99),
        (10.0, 5000, 1.0, 0.99),
        (10.0, 4, -1.0, 0.99),
        (10.0, 4, math.inf, 0.99),
        (10.0, 4, 1.0, 1.0),
    ],
)
def test_rejects_bad_arguments(rate: float, b: int, d: float, q: float) -> None:
    with pytest.raises(ValueError):
        predict(GPU, rate, b, d, quantile=q)


def test_zero_load_with_jitter_uses_the_lognormal_quantile() -> None:
    idle = predict(GPU, 0.0, 4, 2.0, service_cv=0.2)
    assert idle.mean_latency_ms == pytest.approx(8.0)
    # p99 of a lognormal with mean 6 and CV 0.2 is ~6 * 1.55
    assert 2.0 + 6.0 * 1.45 < idle.p99_latency_ms < 2.0 + 6.0 * 1.65
    with pytest.raises(ValueError):
        predict(GPU, 10.0, 4, 2.0, service_cv=-0.1)
