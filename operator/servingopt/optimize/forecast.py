"""Short-horizon demand forecast with an upper quantile (numpy only).

Two methods, chosen by how much history there is:

* **seasonal naive with level adjustment** when at least two days are available:
  the forecast for ``t + k`` is the demand one day earlier at the same time of day,
  scaled by how the last hour compares with the same hour a day earlier (clipped to
  [0.5, 2]).  Daily cycles dominate inference traffic, and this method follows them
  without fitting anything.
* **damped Holt** (level + damped trend, exponential smoothing) otherwise.

The upper band adds the empirical ``quantile`` of the method's own in-sample errors
(widened with the square root of the lead time for Holt).  Plans size capacity for
the mean and the predictive minimum and maximum replicas for the upper band.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Method = Literal["seasonal-naive", "holt", "constant"]

DAY_S = 86400.0
_HOLT_ALPHA = 0.3
_HOLT_BETA = 0.05
_HOLT_PHI = 0.9
_HOLT_WINDOW = 720  # points of history Holt looks at (older ones barely matter)


@dataclass(frozen=True, eq=False)
class Forecast:
    """Demand for the next ``mean.size`` intervals of ``step_s`` seconds (requests/s)."""

    step_s: float
    mean: FloatArray
    upper: FloatArray
    quantile: float
    method: Method
    daily: bool

    @property
    def peak_mean(self) -> float:
        return float(self.mean.max())

    @property
    def peak_upper(self) -> float:
        return float(self.upper.max())

    def upper_within(self, seconds: float) -> float:
        """Highest upper-band demand within the next ``seconds``."""
        k = max(1, min(self.upper.size, math.ceil(seconds / self.step_s)))
        return float(self.upper[:k].max())


def quantile(x: FloatArray, q: float) -> float:
    """``float(np.quantile(x, q))`` (linear method), bit for bit, for a non-empty 1-d
    ``x``: a two-element partition instead of NumPy's general machinery, which costs
    several times more on the few thousand points of a history."""
    n = x.size
    virtual = (n - 1) * q
    lo = min(max(math.floor(virtual), 0), n - 1)
    hi = min(lo + 1, n - 1)
    part = np.partition(x, [lo, hi, n - 1]) if n > 1 else x
    if np.isnan(part[-1]):  # NaN sorts last: any NaN makes the quantile NaN
        return math.nan
    a, b = float(part[lo]), float(part[hi])
    gamma = virtual - lo
    diff = b - a
    # NumPy's lerp: from the nearer end, so that q = 1 gives exactly the maximum
    return b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma


def sampling_step(timestamps_s: FloatArray) -> float:
    """Median interval between samples (seconds); 60 when it cannot be told."""
    if timestamps_s.size < 2:
        return 60.0
    gaps = np.diff(timestamps_s)
    lo, hi = float(gaps.min()), float(gaps.max())
    # evenly spaced (the usual range query): the median is that one gap, no sort needed
    step = lo if lo == hi else float(np.median(gaps))
    return step if step > 0 else 60.0


def constant(rps: float, horizon_s: float, step_s: float = 60.0) -> Forecast:
    """A flat forecast: demand known, no history to say how it moves."""
    h = max(1, math.ceil(horizon_s / step_s))
    level = np.full(h, max(rps, 0.0))
    return Forecast(step_s, level, level.copy(), 1.0, "constant", False)


def forecast(
    timestamps_s: FloatArray,
    rps: FloatArray,
    horizon_s: float = 3600.0,
    quantile: float = 0.95,
) -> Forecast:
    """Forecast demand over ``horizon_s`` from a demand history.

    Raises:
        ValueError: empty history or ``quantile`` outside (0, 1).
    """
    y = np.nan_to_num(np.asarray(rps, dtype=np.float64), nan=0.0).clip(min=0.0)
    if y.size == 0:
        raise ValueError("no demand history")
    if not 0.0 < quantile < 1.0:
        raise ValueError("quantile must be in (0, 1)")
    step = sampling_step(np.asarray(timestamps_s, dtype=np.float64))
    h = max(1, math.ceil(horizon_s / step))
    period = round(DAY_S / step)
    if y.size < 3:
        return constant(float(y[-1]), horizon_s, step)
    if period >= 2 and y.size >= 2 * period:
        return _seasonal(y, step, h, period, quantile)
    return _holt(y[-_HOLT_WINDOW:], step, h, quantile)


def _seasonal(y: FloatArray, step: float, h: int, period: int, q: float) -> Forecast:
    window = max(1, min(period // 4, round(3600.0 / step)))
    recent = float(y[-window:].mean())
    before = float(y[-period - window : -period].mean())
    ratio = float(np.clip(recent / before, 0.5, 2.0)) if before > 0 else 1.0
    # one day ago at the same time of day, for each lead 1..h (wrapping into the last day)
    idx = y.size - period + (np.arange(h) % period)
    mean = y[idx] * ratio
    # errors the method made over the last day, predicting each point from the day before
    errors = y[-period:] - y[-2 * period : -period] * ratio
    spread = max(quantile(errors, q), 0.0)
    return Forecast(step, mean, mean + spread, q, "seasonal-naive", True)


def _holt(y: FloatArray, step: float, h: int, q: float) -> Forecast:
    values = y.tolist()  # a sequential recursion: plain floats are several times faster
    level, trend = values[0], 0.0
    misses: list[float] = []
    for value in values[1:]:
        predicted = level + _HOLT_PHI * trend
        misses.append(value - predicted)
        new_level = _HOLT_ALPHA * value + (1 - _HOLT_ALPHA) * predicted
        trend = _HOLT_BETA * (new_level - level) + (1 - _HOLT_BETA) * _HOLT_PHI * trend
        level = new_level
    errors = np.array(misses, dtype=np.float64)
    damp = np.cumsum(_HOLT_PHI ** np.arange(1, h + 1))
    mean = np.maximum(level + trend * damp, 0.0)
    spread = max(quantile(errors, q), 0.0)
    widen = np.sqrt(np.minimum(np.arange(1, h + 1), 9.0))  # at most 3x the one-step error
    return Forecast(step, mean, mean + spread * widen, q, "holt", False)
