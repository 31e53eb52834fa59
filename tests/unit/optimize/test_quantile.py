"""The history quantile is NumPy's linear quantile, bit for bit."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from servingopt.optimize.forecast import quantile

values = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=500, deadline=None)
@given(arrays(np.float64, st.integers(1, 300), elements=values), st.floats(0.0, 1.0))
def test_quantile_equals_numpy(x: np.ndarray, q: float) -> None:
    with np.errstate(invalid="ignore", over="ignore"):
        want = float(np.quantile(x, q))
    got = quantile(x, q)
    assert got == want or (math.isnan(got) and math.isnan(want))
