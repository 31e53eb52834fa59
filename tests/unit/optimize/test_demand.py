"""Demand forecast and traffic classification on synthetic histories."""

from __future__ import annotations

import numpy as np
import pytest

from servingopt.optimize.forecast import constant, forecast
from servingopt.optimize.traffic import autocorrelation, classify, ramp_growth

DAY = 1440
MINUTE_TS = np.arange(3 * DAY) * 60.0
RNG = np.random.default_rng(7)


def _daily(days: int = 3) -> np.ndarray:
    m = np.arange(days * DAY)
    return 200.0 + 150.0 * np.sin(2 * np.pi * m / DAY)


def test_seasonal_forecast_follows_yesterday() -> None:
    y = _daily()
    n = 2 * DAY + 600  # history ends at minute 600 of day 3
    fc = forecast(MINUTE_TS[:n], y[:n], horizon_s=3600)
    assert fc.method == "seasonal-naive" and fc.daily
    truth = y[n : n + 60]
    assert np.max(np.abs(fc.mean - truth)) < 1.0
    assert np.all(fc.upper >= fc.mean)


def test_seasonal_forecast_scales_with_recent_level() -> None:
    y = _daily()
    y[2 * DAY :] *= 1.5  # today is 50 % busier than yesterday
    n = 2 * DAY + 600
    fc = forecast(MINUTE_TS[:n], y[:n], horizon_s=600)
    assert fc.mean[0] == pytest.approx(y[n], rel=0.05)


def test_holt_follows_a_trend_with_short_history() -> None:
    y = np.linspace(100, 200, 120)
    fc = forecast(MINUTE_TS[:120], y, horizon_s=600)
    assert fc.method == "holt" and not fc.daily
    assert fc.mean[0] > 195  # keeps climbing (damped)
    assert fc.peak_upper >= fc.peak_mean


def test_upper_band_widens_with_noise() -> None:
    calm = 100 + RNG.normal(0, 1, 300)
    noisy = 100 + RNG.normal(0, 20, 300)
    a = forecast(MINUTE_TS[:300], calm)
    b = forecast(MINUTE_TS[:300], noisy)
    assert (b.upper - b.mean).max() > 5 * (a.upper - a.mean).max()


def test_constant_and_invalid() -> None:
    fc = constant(42.0, 3600)
    assert fc.peak_mean == fc.peak_upper == 42.0
    with pytest.raises(ValueError):
        forecast(np.zeros(0), np.zeros(0))


@pytest.mark.parametrize(
    ("series", "kind"),
    [
        (100 + RNG.normal(0, 3, 600), "steady"),
        (100 * np.exp(RNG.normal(0, 0.35, 600)), "variable"),
        (np.where(np.arange(600) % 97 == 0, 900.0, 100.0), "spiky"),
        (_daily()[: 2 * DAY + 100] + RNG.normal(0, 5, 2 * DAY + 100), "periodic"),
    ],
)
def test_classification(series: np.ndarray, kind: str) -> None:
    profile = classify(MINUTE_TS[: series.size], series, startup_s=60)
    assert profile.kind == kind, profile.describe()


def test_daily_autocorrelation_and_ramp() -> None:
    y = _daily()
    assert autocorrelation(y, DAY) == pytest.approx(1.0, abs=1e-6)
    assert autocorrelation(y[:100], DAY) is None
    # +10 % per minute: a 2-minute start-up sees ~21 % growth
    growth = ramp_growth(100 * 1.1 ** np.arange(60.0), 60.0, 120.0)
    assert growth == pytest.approx(0.21, rel=0.01)
    assert ramp_growth(np.full(10, 5.0), 60.0, 60.0) == 0.0
