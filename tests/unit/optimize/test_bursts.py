"""Burst factors from each minute's peak short-window rate, against arrivals whose
per-second rates are known: Poisson, an on/off process, and the Azure LLM traces'
exact request timestamps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from servingopt.optimize import bursts
from servingopt.simulate import traces

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "traces"
WINDOW = 10


def minutes(per_second: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each minute's mean rate, its peak WINDOW-second rate, and the true factor: the
    request-weighted 99th percentile of its per-second rates over its mean."""
    m = per_second.size // 60
    x = per_second[: m * 60].reshape(m, 60).astype(np.float64)
    mean = x.mean(axis=1)
    peak = x.reshape(m, 60 // WINDOW, WINDOW).mean(axis=2).max(axis=1)
    truth = np.full(m, np.nan)
    for i, row in enumerate(x):
        if row.sum() > 0:
            ordered = np.sort(row)
            at = np.searchsorted(np.cumsum(ordered) / ordered.sum(), 1 - bursts.TAIL)
            truth[i] = ordered[at] / row.mean()
    return mean, peak, truth


def test_poisson_arrivals_have_no_burst_factor() -> None:
    counts = np.random.default_rng(1).poisson(200.0, 6 * 3600)
    mean, peak, _ = minutes(counts)
    factors = bursts.burst_factors(mean, peak, WINDOW)
    assert np.median(factors) == 1.0
    assert np.quantile(factors, 0.9) < 1.25  # one peak per minute: noisy, hence the median
    assert bursts.sizing_factor(60.0 * np.arange(factors.size), factors) == 1.0


def test_an_on_off_process_gets_the_factor_its_seconds_show() -> None:
    rng = np.random.default_rng(2)
    rates = np.where(rng.random(6 * 3600) < 0.1, 1000.0, 100.0)  # one second in ten at 10x
    mean, peak, truth = minutes(rng.poisson(rates))
    factors = bursts.burst_factors(mean, peak, WINDOW)
    assert np.median(factors) == pytest.approx(np.median(truth), rel=0.15)


@pytest.mark.skipif(not SHARED.is_dir(), reason="public traces not present")
def test_real_conversation_bursts_are_estimated_from_the_peak_window() -> None:
    conv = traces.load(SHARED / "azure-llm-2023-conv.csv")
    assert conv.counts is not None
    mean, peak, truth = minutes(conv.counts * 20)  # as ServingBench scales it up
    factors = bursts.burst_factors(mean, peak, WINDOW)
    ok = np.isfinite(factors) & np.isfinite(truth)
    assert np.median(factors[ok]) == pytest.approx(np.median(truth[ok]), rel=0.2)
    assert np.corrcoef(factors[ok], truth[ok])[0, 1] > 0.3


@pytest.mark.skipif(not SHARED.is_dir(), reason="public traces not present")
def test_bursts_beyond_the_cap_are_not_sized_for() -> None:
    code = traces.load(SHARED / "azure-llm-2023-code.csv")
    assert code.counts is not None
    mean, peak, truth = minutes(code.counts * 20)
    factors = bursts.burst_factors(mean, peak, WINDOW)
    assert np.nanmedian(truth) > bursts.MAX_SIZED_FACTOR
    times = 60.0 * np.arange(factors.size)
    assert bursts.sizing_factor(times, factors) == bursts.MAX_SIZED_FACTOR


def test_unmeasured_minutes_size_for_no_burst() -> None:
    times = 60.0 * np.arange(5)
    nan = np.full(5, np.nan)
    assert bursts.sizing_factor(times, bursts.burst_factors(nan + 10.0, nan, WINDOW)) == 1.0


def test_old_bursts_weigh_less_than_recent_calm() -> None:
    times = 60.0 * np.arange(24 * 60)
    factors = np.where(times < 6 * 3600, 2.0, 1.0)  # the first six hours bursty
    assert bursts.sizing_factor(times, factors) == 1.0
    assert bursts.sizing_factor(times, factors[::-1]) == 2.0


@given(
    st.floats(1.0, 5000.0),
    st.floats(1.0, 20.0),
    st.sampled_from([2, 5, 10, 15, 30]),
)
def test_factors_are_at_least_one_and_grow_with_the_peak(
    mean: float, ratio: float, window: int
) -> None:
    lower, higher = bursts.burst_factors(
        np.array([mean, mean]), np.array([mean * ratio, mean * ratio * 1.5]), window
    )
    assert 1.0 <= lower <= higher


@given(st.floats(0.0, 8.0))
def test_the_tabulated_tail_start_is_the_bisection(b: float) -> None:
    tabulated = float(np.interp(b, bursts._B_GRID, bursts._tail_starts()))
    assert tabulated == pytest.approx(bursts.tail_start(b), abs=2e-3)
