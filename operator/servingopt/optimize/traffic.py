"""Traffic classification from a demand history: steady, variable, spiky, periodic.

The class picks the HPA ``behavior`` and how much headroom the target keeps:

* burstiness: coefficient of variation (CV) and peak-to-mean ratio;
* seasonality: autocorrelation at a one-day lag (needs two days of history);
* ramp: the 99th-percentile relative growth of demand over one pod start-up time,
  which is how far the load per replica can climb before a new replica serves.

Evidence ages: the mean, CV, peak and ramp weigh each interval by
``0.5 ** (age / TRAFFIC_HALF_LIFE_S)`` (age: before the newest interval), so one
spike classes the traffic as spiky for a while, not for the rest of the day. A
spike's excess over the mean counts with its weight (the peak is
``max(mean + (y - mean) * w)``), the ramp is a weighted quantile. The daily
autocorrelation, and the CV that qualifies a daily pattern, read the whole history:
seasonality is what two days show, not the last hours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import numpy.typing as npt

from servingopt.optimize.forecast import DAY_S, quantile, sampling_step

FloatArray = npt.NDArray[np.float64]
TrafficKind = Literal["steady", "variable", "spiky", "periodic", "unknown"]

#: Half-life of an interval's weight in the traffic's shape: six hours, so a lone 3x
#: spike stops classing the traffic as spiky within about 2.5 h (its excess, 2x the
#: mean, must keep 3/4 of its weight to reach SPIKY_PEAK_TO_MEAN), while spikes that
#: recur every few hours keep it spiky.
TRAFFIC_HALF_LIFE_S = 6 * 3600.0
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


def recency_weights(size: int, step_s: float, half_life_s: float | None) -> FloatArray:
    """Weight of each of ``size`` intervals ``step_s`` apart, the newest 1, halving every
    ``half_life_s`` back (all 1 when ``half_life_s`` is None or not positive).
    Read-only: the same few shapes recur at every re-plan, so they are kept."""
    if half_life_s is None or half_life_s <= 0 or not math.isfinite(step_s):
        return _ones(size)
    return _halving(size, max(step_s, 0.0), half_life_s)


@lru_cache(maxsize=16)
def _ones(size: int) -> FloatArray:
    out = np.ones(size)
    out.flags.writeable = False
    return out


@lru_cache(maxsize=16)
def _halving(size: int, step_s: float, half_life_s: float) -> FloatArray:
    age = (size - 1 - np.arange(size, dtype=np.float64)) * step_s
    out: FloatArray = 0.5 ** (age / half_life_s)
    out.flags.writeable = False
    return out


def weighted_quantile(x: FloatArray, w: FloatArray, q: float) -> float:
    """The smallest ``x`` whose share of the total weight at or below it reaches ``q``.

    A high quantile lies among the largest values: those are found by a partition and
    only they are sorted (the whole array when the weight below them is too much)."""
    n = x.size
    k = min(n, 16 + int(4 * (1.0 - q) * n))
    if k < n:
        part = np.argpartition(x, n - k)
        top = part[n - k :]
        top = top[np.argsort(x[top])]
        below = float(w[part[: n - k]].sum())
        cum_top = below + np.cumsum(w[top])
        total = float(cum_top[-1])
        if total > 0.0 and below < q * total:
            i = int(np.searchsorted(cum_top, q * total, side="left"))
            return float(x[top[min(i, k - 1)]])
    order = np.argsort(x)  # ties hold equal values: any order gives the same result
    cum = np.cumsum(w[order])
    total = float(cum[-1]) if cum.size else 0.0
    if total <= 0.0:
        return quantile(x, q)
    i = int(np.searchsorted(cum, q * total, side="left"))
    return float(x[order[min(i, order.size - 1)]])


def ramp_growth(
    y: FloatArray,
    step_s: float,
    startup_s: float,
    q: float = 0.99,
    half_life_s: float | None = TRAFFIC_HALF_LIFE_S,
) -> float:
    """``q``-quantile of the relative demand growth over one start-up time (>= 0), each
    growth weighted by its recency (``half_life_s``; None: all alike)."""
    if y.size < 2:
        return 0.0
    k = max(1, round(startup_s / step_s))
    if k >= y.size:
        k = y.size - 1
    floor = max(float(y.mean()) * 0.05, 1e-9)  # ignore growth from (near) zero
    growth = (y[k:] - y[:-k]) / np.maximum(y[:-k], floor)
    if half_life_s is None:
        g = quantile(growth, q)
    else:
        g = weighted_quantile(growth, recency_weights(y.size, step_s, half_life_s)[k:], q)
    g = max(g, 0.0)
    return g * min(1.0, startup_s / (k * step_s))  # samples coarser than the start-up


def classify(
    timestamps_s: FloatArray,
    rps: FloatArray,
    startup_s: float,
    half_life_s: float | None = TRAFFIC_HALF_LIFE_S,
) -> TrafficProfile:
    """Classify a demand history (requests/s per interval), recent intervals weighing
    more (``half_life_s``; None: the whole history alike)."""
    y = np.nan_to_num(np.asarray(rps, dtype=np.float64), nan=0.0).clip(min=0.0)
    if y.size < 3 or float(y.mean()) <= 0.0:
        return UNKNOWN
    step = sampling_step(np.asarray(timestamps_s, dtype=np.float64))
    w = recency_weights(y.size, step, half_life_s)
    mean = float(np.dot(w, y) / w.sum())
    if mean <= 0.0:
        return UNKNOWN
    cv = math.sqrt(float(np.dot(w, (y - mean) ** 2) / w.sum())) / mean
    peak = float(np.max(mean + (y - mean) * w) / mean)
    whole_cv = float(y.std() / y.mean())
    acf = autocorrelation(y, round(DAY_S / step))
    ramp = ramp_growth(y, step, startup_s, half_life_s=half_life_s)
    kind: TrafficKind
    if acf is not None and acf >= PERIODIC_ACF and whole_cv >= 0.15:
        kind = "periodic"
    elif peak >= SPIKY_PEAK_TO_MEAN:
        kind = "spiky"
    elif cv >= VARIABLE_CV:
        kind = "variable"
    else:
        kind = "steady"
    return TrafficProfile(kind, mean, cv, peak, acf, ramp if math.isfinite(ramp) else 0.0, y.size)
