"""ProfileCorrection: convergence, bounds, smoothing and robustness to bad input."""

from __future__ import annotations

import math

import pytest

from servingopt.model import LatencyProfile, ProfileCorrection, p99_at


def test_converges_to_a_proportional_error() -> None:
    corr = ProfileCorrection()
    true_factor = 1.4
    for _ in range(40):
        # a quantity proportional to service time, predicted with the current factor
        corr = corr.update(observed=10.0 * true_factor, predicted=10.0 * corr.factor)
    assert corr.factor == pytest.approx(true_factor, rel=1e-3)
    assert corr.observations == 40


def test_learns_from_p99_through_the_queue_model() -> None:
    prof = LatencyProfile.from_coefficients(5.0, 1.0)
    real = prof.scaled(1.3)
    rate, b, d = 400.0, 16, 2.0
    observed = p99_at(real, rate, b, d)
    corr = ProfileCorrection()
    for _ in range(30):
        corr = corr.update(observed, p99_at(corr.apply(prof), rate, b, d))
    assert corr.factor == pytest.approx(1.3, rel=0.02)


def test_bounded_and_smoothed() -> None:
    corr = ProfileCorrection()
    once = corr.update(observed=1000.0, predicted=1.0)
    assert 1.0 < once.factor <= 3.0
    assert once.factor < 3.0  # smoothing: one observation does not jump to the bound
    for _ in range(50):
        corr = corr.update(observed=1000.0, predicted=1.0)
    assert corr.factor == pytest.approx(3.0)
    for _ in range(50):
        corr = corr.update(observed=1.0, predicted=1000.0)
    assert corr.factor == pytest.approx(0.5)


def test_weight_and_invalid_inputs() -> None:
    corr = ProfileCorrection()
    assert corr.update(20.0, 10.0, weight=0.0) is corr
    for bad in (math.nan, math.inf, 0.0, -1.0):
        assert corr.update(bad, 10.0) is corr
        assert corr.update(10.0, bad) is corr
    light = corr.update(20.0, 10.0, weight=0.2)
    heavy = corr.update(20.0, 10.0, weight=1.0)
    assert 1.0 < light.factor < heavy.factor


def test_relaxes_toward_one_without_observations() -> None:
    corr = ProfileCorrection(factor=2.0, decay=0.1)
    assert corr.relaxed(0) is corr
    r1 = corr.relaxed(1)
    r20 = corr.relaxed(20)
    assert 1.0 < r20.factor < r1.factor < 2.0


def test_apply_and_validation() -> None:
    prof = LatencyProfile.from_coefficients(1.0, 1.0)
    assert ProfileCorrection().apply(prof) is prof
    assert float(ProfileCorrection(factor=2.0).apply(prof).service_time_ms(1)) == 4.0
    with pytest.raises(ValueError):
        ProfileCorrection(min_factor=1.5)
    with pytest.raises(ValueError):
        ProfileCorrection(smoothing=0.0)
    with pytest.raises(ValueError):
        ProfileCorrection(factor=-1.0)
