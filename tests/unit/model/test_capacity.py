"""Capacity at the SLO: the search, its bounds, and agreement with the simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from servingopt.model import (
    CapacityAtSlo,
    LatencyProfile,
    capacity_at_slo,
    p99_at,
    poisson_arrivals_ms,
    predict,
    simulate_batching,
)

GPU = LatencyProfile.from_coefficients(5.0, 1.0)
CPU = LatencyProfile.from_coefficients(0.2, 4.0)


def test_gpu_capacity_is_tight_and_uses_batching() -> None:
    cap = capacity_at_slo(GPU, 40.0)
    assert cap.feasible
    assert cap.max_batch > 1
    assert cap.p99_ms <= 40.0
    assert cap.rate_rps < cap.stability_limit_rps
    # tight: a little more traffic breaks the SLO with the chosen settings
    assert p99_at(GPU, cap.rate_rps * 1.02, cap.max_batch, cap.max_delay_ms) > 40.0
    # and batching beats no batching by a wide margin on this profile
    single = capacity_at_slo(GPU, 40.0, batch_candidates=[1])
    assert cap.rate_rps > 2 * single.rate_rps


def test_cpu_profile_gains_little_from_batching() -> None:
    best = capacity_at_slo(CPU, 50.0)
    single = capacity_at_slo(CPU, 50.0, batch_candidates=[1])
    assert best.feasible and single.feasible
    assert best.rate_rps < 1.15 * single.rate_rps


def test_bounds_are_respected() -> None:
    cap = capacity_at_slo(
        GPU,
        60.0,
        [1, 2, 4, 8, 16, 32],
        [0, 1, 2, 5, 10],
        batch_bounds=(2, 8),
        delay_bounds_ms=(1.0, 5.0),
    )
    assert 2 <= cap.max_batch <= 8
    assert 1.0 <= cap.max_delay_ms <= 5.0


def test_infeasible_when_a_lone_request_misses_the_slo() -> None:
    cap = capacity_at_slo(GPU, 5.0)  # t(1) = 6 ms
    assert not cap.feasible
    assert cap.rate_rps == 0.0
    assert cap.p99_ms == pytest.approx(6.0)
    # a long delay alone can make a candidate infeasible
    only_slow = capacity_at_slo(GPU, 12.0, [8], [10.0])
    assert not only_slow.feasible


def test_empty_candidates_after_bounds() -> None:
    cap = capacity_at_slo(GPU, 50.0, [16, 32], [0.0], batch_bounds=(1, 8))
    assert cap == CapacityAtSlo(
        feasible=False,
        rate_rps=0.0,
        max_batch=0,
        max_delay_ms=0.0,
        p99_ms=math.inf,
        mean_batch=0.0,
        utilisation=0.0,
        stability_limit_rps=0.0,
        slo_p99_ms=50.0,
    )


def test_slo_must_hold_at_every_lower_rate() -> None:
    # B = 8, D = 20: a lone request waits 20 ms, but more traffic fills batches sooner:
    # p99 dips as load grows before queueing raises it.  The capacity is the first
    # crossing, so every rate below it meets the SLO.
    prof = LatencyProfile.from_coefficients(1.0, 0.1)
    cap = capacity_at_slo(prof, 25.0, [8], [20.0])
    assert cap.feasible
    for frac in np.linspace(0.05, 1.0, 12):
        assert p99_at(prof, frac * cap.rate_rps, 8, 20.0) <= 25.0 + 1e-6


def test_capacity_holds_in_simulation() -> None:
    cap = capacity_at_slo(GPU, 40.0, [1, 4, 16], [0.0, 2.0])
    arr = poisson_arrivals_ms(cap.rate_rps, 150_000, np.random.default_rng(7))
    sim = simulate_batching(arr, GPU, cap.max_batch, cap.max_delay_ms)
    assert sim.quantile_ms(0.99, warmup=0.02) == pytest.approx(40.0, rel=0.15)
    pred = predict(GPU, cap.rate_rps, cap.max_batch, cap.max_delay_ms)
    assert pred.mean_batch == pytest.approx(sim.mean_batch, rel=0.05)


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        capacity_at_slo(GPU, 0.0)
    with pytest.raises(ValueError):
        capacity_at_slo(GPU, 10.0, rel_tol=0.0)


def test_loose_slo_is_capped_below_saturation() -> None:
    cap = capacity_at_slo(GPU, 10_000.0, [4], [0.0])
    assert cap.rate_rps == pytest.approx(0.95 * cap.stability_limit_rps)
    cap99 = capacity_at_slo(GPU, 10_000.0, [4], [0.0], max_load_fraction=0.99)
    assert cap99.rate_rps == pytest.approx(0.99 * cap.stability_limit_rps)
    with pytest.raises(ValueError):
        capacity_at_slo(GPU, 10.0, max_load_fraction=1.0)


def test_jitter_lowers_capacity() -> None:
    steady = capacity_at_slo(GPU, 40.0, [4, 16], [0.0, 2.0])
    noisy = capacity_at_slo(GPU, 40.0, [4, 16], [0.0, 2.0], service_cv=0.3)
    assert noisy.feasible
    assert noisy.rate_rps < steady.rate_rps
    assert p99_at(GPU, noisy.rate_rps, noisy.max_batch, noisy.max_delay_ms, service_cv=0.3) <= 40.0
