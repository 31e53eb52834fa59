"""Traffic classes decay as evidence ages: one spike does not price the rest of the day."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from servingopt.optimize.traffic import (
    TRAFFIC_HALF_LIFE_S,
    classify,
    ramp_growth,
    recency_weights,
    weighted_quantile,
)

MINUTE = 60.0


def _day_with_one_spike(minutes_after: int) -> tuple[np.ndarray, np.ndarray]:
    """Steady 100 req/s with one 3x spike of 10 minutes, ``minutes_after`` ago."""
    n = 6 * 60 + minutes_after + 10
    rps = np.full(n, 100.0)
    start = 6 * 60
    rps[start : start + 10] = 300.0
    return MINUTE * np.arange(n), rps


def test_a_fresh_spike_classes_the_traffic_as_spiky() -> None:
    ts, rps = _day_with_one_spike(minutes_after=10)
    assert classify(ts, rps, 60).kind == "spiky"


def test_hours_later_the_same_spike_no_longer_does() -> None:
    ts, rps = _day_with_one_spike(minutes_after=8 * 60)
    profile = classify(ts, rps, 60)
    assert profile.kind == "steady"
    assert profile.peak_to_mean < 2.0  # the spike's excess kept 0.5 ** (8 / 6) of itself
    # the whole history alike (no decay) still calls it spiky: what the half-life changes
    assert classify(ts, rps, 60, half_life_s=None).kind == "spiky"


def test_spikes_that_recur_keep_the_traffic_spiky() -> None:
    n = 24 * 60
    rps = np.full(n, 100.0)
    for start in range(60, n, 3 * 60):  # 4x every three hours
        rps[start : start + 10] = 400.0
    ts = MINUTE * np.arange(n)
    last = max(range(60, n, 3 * 60))
    for after in (30, 60, 120):  # between two spikes
        assert classify(ts[: last + after], rps[: last + after], 60).kind == "spiky"


def test_an_old_ramp_stops_halving_the_target() -> None:
    # ten-minute samples: one 3x step up counts in the p99 growth while it is fresh
    rps = np.full(200, 100.0)
    rps[100] = 300.0
    fresh = ramp_growth(rps[:101], 600.0, 600.0)
    old = ramp_growth(rps, 600.0, 600.0)
    assert fresh == pytest.approx(2.0)
    assert old < 0.5


def test_recency_weights_halve_every_half_life() -> None:
    w = recency_weights(13, 1800.0, TRAFFIC_HALF_LIFE_S)
    assert w[-1] == 1.0 and w[0] == pytest.approx(0.5)
    assert np.all(np.diff(w) > 0)
    assert np.all(recency_weights(5, 60.0, None) == 1.0)


@given(st.lists(st.floats(min_value=-5, max_value=5), min_size=1, max_size=50), st.floats(0, 1))
def test_equal_weights_give_a_quantile_of_the_data(xs: list[float], q: float) -> None:
    x = np.asarray(xs)
    got = weighted_quantile(x, np.ones(x.size), q)
    assert got in set(xs)
    assert np.min(x) <= got <= np.max(x)
    assert np.mean(x <= got) >= q - 1e-9


@given(st.integers(min_value=0, max_value=24 * 60))
def test_decayed_traffic_is_never_more_spiky_than_the_whole_history(after: int) -> None:
    ts, rps = _day_with_one_spike(minutes_after=after)
    decayed, whole = classify(ts, rps, 60), classify(ts, rps, 60, half_life_s=None)
    # the spike's excess counts at most fully
    assert decayed.peak_to_mean <= max(whole.peak_to_mean, 300.0 / decayed.mean_rps) + 1e-9


@given(
    st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=400),
    st.sampled_from([0.5, 0.9, 0.99, 0.999]),
    st.integers(0, 2**16),
)
def test_the_partitioned_weighted_quantile_is_the_sorted_one(
    values: list[float], q: float, seed: int
) -> None:
    x = np.round(np.asarray(values), 1)  # ties too
    w = 0.5 ** np.random.default_rng(seed).uniform(0.0, 8.0, x.size)
    order = np.argsort(x)
    cum = np.cumsum(w[order])
    at = int(np.searchsorted(cum, q * float(cum[-1]), side="left"))
    assert weighted_quantile(x, w, q) == float(x[order[min(at, x.size - 1)]])
