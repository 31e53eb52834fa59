"""The candidate grid and its one-setting shortcut agree."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from servingopt.optimize import perfgrid


@settings(max_examples=300, deadline=None)
@given(
    st.floats(0.2, 100.0),
    st.floats(1.0, 60.0),
    st.floats(0.0, 1.0),
    st.sampled_from([1, 2, 3, 6, 8, 16, 24, 32, 64, 128]),
    st.sampled_from([0.0, 0.5, 2.0, 10.0, 50.0, 800.0]),
    st.floats(0.0, 1.1),
)
def test_p99_one_equals_the_grid_lookup(
    one: float, growth: float, shape: float, batch: int, delay: float, load: float
) -> None:
    full = one * growth
    rate = load * 1000.0 * batch / full
    grid = perfgrid.build(
        np.array([one]), np.array([[full]]), np.array([shape]), [batch], [delay], 1e9
    )
    want = grid.p99_at((0, 0, 0), rate)
    got = perfgrid.p99_one(one, full, shape, batch, delay, rate)
    assert got == want or (math.isinf(got) and not math.isfinite(want))
