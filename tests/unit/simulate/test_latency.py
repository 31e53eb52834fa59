"""The replay's closed-form replica latency against the discrete-event batcher."""

from __future__ import annotations

import numpy as np
import pytest

from servingopt.model.des import poisson_arrivals_ms, simulate_batching
from servingopt.model.profile import LatencyProfile
from servingopt.simulate.latency import ReplicaLatency, ServiceCurve

GPU = [(1, 2.6), (2, 3.4), (4, 5.0), (8, 8.4), (16, 15.2), (32, 29.0)]
CPU = [(1, 25.0), (2, 48.0), (4, 94.0), (8, 186.0)]


@pytest.mark.parametrize(
    ("points", "batch", "delay", "load"),
    [
        (GPU, 1, 0.0, 0.5),
        (GPU, 8, 2.0, 0.8),
        (GPU, 8, 2.0, 0.9),
        (CPU, 1, 0.0, 0.8),
        (CPU, 8, 2.0, 0.5),
    ],
)
def test_p99_close_to_the_discrete_event_batcher(
    points: list[tuple[int, float]], batch: int, delay: float, load: float
) -> None:
    model = ReplicaLatency(ServiceCurve.from_points(points), batch, delay)
    rate = load * model.max_rps
    profile = LatencyProfile.from_points([b for b, _ in points], [t for _, t in points])
    arrivals = poisson_arrivals_ms(rate, 40000, np.random.default_rng(7))
    des = simulate_batching(arrivals, profile, batch, delay).quantile_ms(0.99, warmup=0.1)
    assert model.quantile_ms(0.99, rate) == pytest.approx(des, rel=0.3)


def test_survival_is_a_distribution() -> None:
    model = ReplicaLatency(ServiceCurve.from_points(GPU), 16, 4.0)
    x = np.linspace(0, 500, 200)
    for load in (0.1, 0.5, 0.9):
        s = model.survival(x, load * model.max_rps)
        assert s[0] == 1.0
        assert np.all(np.diff(s) <= 1e-12)
        assert s[-1] < 1e-3


def test_capacity_grows_with_the_slo_and_meets_it() -> None:
    model = ReplicaLatency(ServiceCurve.from_points(GPU), 16, 4.0)
    caps = [model.capacity_at(slo) for slo in (20.0, 40.0, 80.0, 200.0)]
    assert caps == sorted(caps)
    assert 0 < caps[0] < model.max_rps
    assert model.quantile_ms(0.99, caps[1]) == pytest.approx(40.0, rel=0.02)
    assert model.capacity_at(1.0) == 0.0  # even an idle replica is slower than 1 ms


def test_slower_curve_has_less_capacity() -> None:
    curve = ServiceCurve.from_points(GPU)
    fast = ReplicaLatency(curve, 8, 2.0).capacity_at(40.0)
    slow = ReplicaLatency(curve.scaled(1.2), 8, 2.0).capacity_at(40.0)
    assert slow < fast
