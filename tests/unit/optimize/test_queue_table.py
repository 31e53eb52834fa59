"""The packaged queue table against the exact queue model it was built from."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servingopt.model import LatencyProfile, capacity_at_slo, predict
from servingopt.optimize import perfgrid
from servingopt.optimize.queue_table import BATCHES, DELAY_RATIOS, LOADS, SHAPES, packaged_table


def test_table_matches_its_grid_and_is_monotone_in_load() -> None:
    tab = packaged_table()
    assert tab.p99.shape == (len(BATCHES), len(SHAPES), len(DELAY_RATIOS), len(LOADS))
    assert np.all(np.diff(tab.p99, axis=-1) >= 0)


@pytest.mark.parametrize(
    ("shape", "batch", "ratio", "load"), [(0.8, 8, 0.5, 0.7), (0.3, 4, 0.0, 0.9)]
)
def test_grid_points_reproduce_the_exact_model(
    shape: float, batch: int, ratio: float, load: float
) -> None:
    """A stale table (the model changed) fails here: regenerate it (see queue_table.py)."""
    profile = LatencyProfile.from_coefficients(shape, 1.0 - shape)
    full = float(profile.service_time_ms(batch))
    exact = predict(profile, load * 1000 * batch / full, batch, ratio * full).p99_latency_ms
    tab = packaged_table()
    idx = (BATCHES.index(batch), SHAPES.index(shape), DELAY_RATIOS.index(ratio), LOADS.index(load))
    assert tab.p99[idx] * full == pytest.approx(exact, rel=0.02)


@pytest.mark.parametrize(
    ("a", "c", "slo", "batches", "delays"),
    [
        (3.0, 0.5, 40.0, (1, 4, 16), (0.0, 2.0)),  # a GPU-like profile between grid shapes
        (0.5, 9.0, 100.0, (1, 2), (0.0,)),  # CPU-like
    ],
)
def test_capacity_close_to_the_exact_search(
    a: float, c: float, slo: float, batches: tuple[int, ...], delays: tuple[float, ...]
) -> None:
    profile = LatencyProfile.from_coefficients(a, c)
    exact = capacity_at_slo(profile, slo, batches, delays)
    one, full, shape = perfgrid.profile_arrays([profile], batches)
    grid = perfgrid.build(one, full, shape, batches, delays, slo)
    fast = float(grid.capacity_rps.max())
    # interpolating a convex curve linearly errs on the safe side, by a few percent
    assert fast == pytest.approx(exact.rate_rps, rel=0.12)
    assert fast <= exact.rate_rps * 1.03


def test_infeasible_and_out_of_table_delays() -> None:
    profile = LatencyProfile.from_coefficients(5.0, 1.0)
    one, full, shape = perfgrid.profile_arrays([profile], [4])
    grid = perfgrid.build(one, full, shape, [4], [0.0, 500.0], 5.0)  # t(1) = 6 ms > 5 ms
    assert np.all(grid.capacity_rps == 0.0)
    assert np.isinf(grid.zero_load_p99_ms[0, 0, 1])  # D = 55 t(B): beyond the table


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 64), st.floats(0.1, 500.0)), min_size=1, max_size=8,
        unique_by=lambda p: p[0],
    )
)  # fmt: skip
def test_points_summary_matches_latency_profile(pts: list[tuple[int, float]]) -> None:
    """The planner's fast path reads measured points exactly like LatencyProfile."""
    pts.sort()
    bs = tuple(float(b) for b, _ in pts)
    ts = tuple(t for _, t in pts)
    batches = [1, 2, 4, 8, 16, 32, 64]
    one, full, shape = perfgrid.points_arrays([(bs, ts)], batches, [1.0])
    e_one, e_full, e_shape = perfgrid.profile_arrays([LatencyProfile.from_points(bs, ts)], batches)
    np.testing.assert_allclose(one, e_one, rtol=1e-9)
    np.testing.assert_allclose(full, e_full, rtol=1e-9)
    np.testing.assert_allclose(shape, e_shape, rtol=1e-9, atol=1e-12)
