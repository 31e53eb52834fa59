"""LatencyProfile: interpolation, extrapolation, CPU-like curves, derivation."""

from __future__ import annotations

import numpy as np
import pytest

from servingopt.model import LatencyProfile, estimate_profile


def test_affine_points_fit_and_interpolate() -> None:
    p = LatencyProfile.from_points([1, 4, 16], [6.0, 9.0, 21.0])
    assert p.fits_linear
    assert p.a_ms == pytest.approx(5.0)
    assert p.c_ms == pytest.approx(1.0)
    np.testing.assert_allclose(p.service_time_ms([1, 2, 4, 10, 16]), [6, 7, 9, 15, 21])
    # beyond the last point: the fitted slope
    assert float(p.service_time_ms(32)) == pytest.approx(37.0)


def test_piecewise_between_points_and_last_segment_slope_when_not_linear() -> None:
    # flattening curve (memory bound at small b, compute bound later): not affine
    p = LatencyProfile.from_points([1, 8, 32], [2.0, 3.0, 12.0], tolerance=0.05)
    assert not p.fits_linear
    assert float(p.service_time_ms(4)) == pytest.approx(2.0 + 3 / 7)
    last_slope = (12.0 - 3.0) / 24
    assert float(p.service_time_ms(64)) == pytest.approx(12.0 + 32 * last_slope)


def test_measurements_are_made_monotone_and_deduplicated() -> None:
    p = LatencyProfile.from_points([4, 1, 2, 2], [5.0, 3.0, 2.0, 4.0])
    # duplicates averaged (b=2 -> 3.0), then running max: [3, 3, 5]
    np.testing.assert_allclose(p.times_ms, [3.0, 3.0, 5.0])
    b = np.arange(1, 40)
    assert np.all(np.diff(p.service_time_ms(b)) >= 0)


def test_cpu_like_profile_has_flat_throughput() -> None:
    cpu = LatencyProfile.from_points([1, 2, 4, 8], [4.0, 8.1, 16.0, 32.2])
    thr = cpu.throughput_rps([1, 2, 4, 8, 16])
    assert np.ptp(thr) / thr.mean() < 0.02
    gpu = LatencyProfile.from_coefficients(5.0, 1.0)
    assert gpu.throughput_rps(16) > 3 * gpu.throughput_rps(1)


def test_single_point_assumes_no_batching_benefit() -> None:
    p = LatencyProfile.from_points([2], [10.0])
    assert float(p.service_time_ms(1)) == pytest.approx(5.0)
    assert float(p.service_time_ms(8)) == pytest.approx(40.0)


def test_below_first_point_extends_down_and_stays_positive() -> None:
    p = LatencyProfile.from_points([4, 8], [10.0, 11.0])
    assert 0 < float(p.service_time_ms(1)) < 10.0


def test_vectorised_shapes() -> None:
    p = LatencyProfile.from_coefficients(1.0, 0.5)
    assert p.service_time_ms(3).shape == ()
    assert p.service_time_ms(np.ones((2, 3))).shape == (2, 3)
    table = p.service_time_table(4)
    np.testing.assert_allclose(table, [0, 1.5, 2.0, 2.5, 3.0])


def test_scaled_and_estimate() -> None:
    p = LatencyProfile.from_points([1, 8], [2.0, 4.0], label="t4/fp16")
    slow = p.scaled(1.5)
    np.testing.assert_allclose(
        slow.service_time_ms([1, 8, 20]), 1.5 * p.service_time_ms([1, 8, 20])
    )
    fast = estimate_profile(p, 2.0)
    np.testing.assert_allclose(fast.service_time_ms([1, 8, 20]), p.service_time_ms([1, 8, 20]) / 2)
    assert "estimate" in fast.label


@pytest.mark.parametrize(
    ("batches", "times"),
    [([], []), ([1, 2], [1.0]), ([0, 1], [1.0, 2.0]), ([1], [0.0]), ([1], [float("nan")])],
)
def test_invalid_points(batches: list[float], times: list[float]) -> None:
    with pytest.raises(ValueError):
        LatencyProfile.from_points(batches, times)


def test_invalid_coefficients_and_factors() -> None:
    with pytest.raises(ValueError):
        LatencyProfile.from_coefficients(-1.0, 1.0)
    with pytest.raises(ValueError):
        LatencyProfile.from_coefficients(0.0, 0.0)
    p = LatencyProfile.from_coefficients(1.0, 1.0)
    with pytest.raises(ValueError):
        p.scaled(0.0)
    with pytest.raises(ValueError):
        estimate_profile(p, -2.0)
