"""Traffic classification from a demand history: steady, variable, spiky, periodic.

The class picks the HPA ``behavior`` and how much headroom the target keeps:

* burstiness: coefficient of variation (CV) and peak-to-mean ratio;
* seasonality: autocorrelation at a one-day lag (needs two days of history);
* ramp: the 99th-percentile relative growth of demand over one pod start-up time,
  which is how far the load per replica can climb before a new replica serves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from servingopt.optimize.forecast import DAY_S, quantile, sampling_step

FloatArray = npt.NDArray[np.float64]
TrafficKind = Literal["steady", "variable", "spiky", "periodic", "unknown"]

PERIODIC_ACF = 0.6
SPIKY_PEAK_TO_MEAN = 2.5
VARIABLE_CV = 0.25


@dataclass(frozen=True)
class TrafficProfile:
    """What the history says about the traffic's shape."""

    kind: TrafficKind
    mean_rps: float
    cv: float
    peak_to_mean: float
    daily_autocorrelation: float | None
    ramp_per_startup: float  # relative growth of demand within one start-up time (p99)
    samples: int
    burst_factor: float = 1.0
    """Bursts within the minute: capacity needed over the minute's mean (optimize.bursts)."""

    def describe(self) -> str:
        acf = (
            f", daily autocorrelation {self.daily_autocorrelation:.2f}"
            if self.daily_autocorrelation is not None
            else ""
        )
        bursty = self.burst_factor > 1.005
        burst = f", bursts x{self.burst_factor:.2f} within the minute" if bursty else ""
        return (
            f"traffic {self.kind} (CV {self.cv:.2f}, peak/mean {self.peak_to_mean:.1f}{acf}, "
            f"p99 growth {100 * self.ramp_per_startup:.0f}% per start-up{burst})"
        )


UNKNOWN = TrafficProfile("unknown", 0.0, 0.0, 1.0, None, 0.0, 0)


def autocorrelation(y: FloatArray, lag: int) -> float | None:
    """Correlation of the series with itself ``lag`` samples later (Pearson over the
    overlap, so a short history is not biased toward 0); None with too little data."""
    if lag < 1 or y.size < 2 * lag:
        return None
    a, b = y[:-lag] - y[:-lag].mean(), y[lag:] - y[lag:].mean()
    denom = math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)))
    if denom <= 0.0:
        return 0.0
    return float(np.dot(a, b) / denom)


def ramp_growth(y: FloatArray, step_s: float, startup_s: float, q: float = 0.99) -> float:
    """``q``-quantile of the relative demand growth over one start-up time (>= 0)."""
    if y.size < 2:
        return 0.0
    k = max(1, round(startup_s / step_s))
    if k >= y.size:
        k = y.size - 1
    floor = max(float(y.mean()) * 0.05, 1e-9)  # ignore growth from (near) zero
    growth = (y[k:] - y[:-k]) / np.maximum(y[:-k], floor)
    g = max(quantile(growth, q), 0.0)
    return g * min(1.0, startup_s / (k * step_s))  # samples coarser than the start-up


def classify(timestamps_s: FloatArray, rps: FloatArray, startup_s: float) -> TrafficProfile:
    """Classify a demand history (requests/s per interval)."""
    y = np.nan_to_num(np.asarray(rps, dtype=np.float64), nan=0.0).clip(min=0.0)
    if y.size < 3 or float(y.mean()) <= 0.0:
        return UNKNOWN
    step = sampling_step(np.asarray(timestamps_s, dtype=np.float64))
    mean = float(y.mean())
    cv = float(y.std() / mean)
    peak = float(y.max() / mean)
    acf = autocorrelation(y, round(DAY_S / step))
    ramp = ramp_growth(y, step, startup_s)
    kind: TrafficKind
    if acf is not None and acf >= PERIODIC_ACF and cv >= 0.15:
        kind = "periodic"
    elif peak >= SPIKY_PEAK_TO_MEAN:
        kind = "spiky"
    elif cv >= VARIABLE_CV:
        kind = "variable"
    else:
        kind = "steady"
    return TrafficProfile(kind, mean, cv, peak, acf, ramp if math.isfinite(ramp) else 0.0, y.size)
