"""Bursts within the minute: how much more capacity than the minute's mean they need.

The queue model takes Poisson arrivals at the minute's mean rate. Real traffic can come
in bursts that a per-minute rate hides (a client fanning out a batch job, a retry
storm, the Azure LLM traces): seconds at several times the mean, when the replicas fall
behind and the p99 goes with them. What Prometheus can measure of that is the rate over
short windows of ``window_s`` seconds (a subquery ``max_over_time(rate(...[W])[1m:W])``,
or the replay's own record): the minute's *peak* short-window rate.

From the peak-to-mean ratio ``P`` of a minute this module estimates the *burst factor*
``F``: the request-weighted 99th percentile of the per-second rate over the mean rate,
in excess of what Poisson arrivals (which the queue model already includes) give.

* The ``m = 60 / W`` window rates of a minute are taken as normal around the mean, so
  their maximum is about ``mean + e_m sd_W`` (``e_m`` the expected maximum of ``m``
  standard normals): ``sd_W / mean = (P - 1) / e_m``.
* Seconds within a window vary independently: the per-second relative variance is
  ``W`` times the window's, less the Poisson share ``1 / rate`` the model already
  carries: ``b^2 = max(0, W (sd_W / mean)^2 - 1 / rate)``.
* The request-weighted upper 1 % of a normal rate with relative deviation ``b`` starts
  at ``1 + b u`` where ``1 - Phi(u) + b phi(u) = 0.01`` (requests weigh each second by
  its rate): ``F = 1 + b u``.

``F`` is 1 for Poisson traffic. Pure functions, numpy only.
"""

from __future__ import annotations

import math
from functools import cache
from statistics import NormalDist

import numpy as np

from servingopt.api import ModelServingSpec
from servingopt.optimize.traffic import TRAFFIC_HALF_LIFE_S, weighted_quantile
from servingopt.values import FloatArray, Observation

#: Requests in seconds beyond the burst factor: the p99's share.
TAIL = 0.01
#: Bursts judged over the last day, recent hours weighing more (the traffic's half-life).
LOOKBACK_S = 24 * 3600.0
HALF_LIFE_S = TRAFFIC_HALF_LIFE_S
#: The burst factor sized for: this quantile of the minutes' factors.
SIZING_QUANTILE = 0.5
#: Bursts beyond this are not sized for: covering them costs more than the SLO is
#: usually worth (the status says so); the HPA still follows the minute's demand.
MAX_SIZED_FACTOR = 2.5

_N = NormalDist()


def expected_max(m: int) -> float:
    """Expected maximum of ``m`` independent standard normals (Blom's approximation)."""
    if m <= 1:
        return 0.0
    return _N.inv_cdf((m - 0.375) / (m + 0.25))


def tail_start(b: float) -> float:
    """``u`` with ``1 - Phi(u) + b phi(u) = TAIL`` (bisection; ``b >= 0``)."""
    lo, hi = -1.0, 40.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if (1.0 - _N.cdf(mid)) + b * _N.pdf(mid) > TAIL:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


#: ``tail_start`` tabulated: burst factors are read for every interval of a two-day
#: history at every re-plan, and beyond the table's end they exceed the cap anyway.
_B_GRID = np.linspace(0.0, 8.0, 801)
_ERF = np.frompyfunc(math.erf, 1, 1)


@cache
def _tail_starts() -> FloatArray:
    """:func:`tail_start` of every ``_B_GRID`` entry: the same bisection, on arrays."""
    lo: FloatArray = np.full(_B_GRID.size, -1.0)
    hi: FloatArray = np.full(_B_GRID.size, 40.0)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        above = 0.5 * (1.0 - np.asarray(_ERF(mid / math.sqrt(2.0)), dtype=np.float64))
        density = np.exp(-0.5 * mid * mid) / math.sqrt(2.0 * math.pi)
        more = above + _B_GRID * density > TAIL
        lo, hi = np.where(more, mid, lo), np.where(more, hi, mid)
    middle: FloatArray = 0.5 * (lo + hi)
    return middle


def burst_factors(mean_rps: FloatArray, peak_rps: FloatArray, window_s: float) -> FloatArray:
    """Each minute's burst factor (>= 1; NaN where the peak was not measured)."""
    m = max(1, int(60 // max(window_s, 1.0)))
    e = expected_max(m)
    out = np.full(mean_rps.shape, np.nan)
    if e <= 0:
        return out
    ok = np.isfinite(peak_rps) & np.isfinite(mean_rps) & (mean_rps > 0)
    mean = np.where(ok, mean_rps, 1.0)
    ratio = np.where(ok, peak_rps / mean, 1.0)
    sd_w = np.maximum(ratio - 1.0, 0.0) / e
    b = np.sqrt(np.maximum(window_s * sd_w**2 - 1.0 / mean, 0.0))
    u = np.interp(b, _B_GRID, _tail_starts())  # held at the last entry beyond the table
    out[ok] = 1.0 + b[ok] * u[ok]
    return out


def sizing_factor(times_s: FloatArray, factors: FloatArray) -> float:
    """The burst factor to size for: a high quantile of the last day's minutes, the
    recent hours weighing more (1 without measurements)."""
    ok = np.isfinite(factors)
    if not ok.any():
        return 1.0
    t, f = times_s[ok], factors[ok]
    recent = t >= t[-1] - LOOKBACK_S
    t, f = t[recent], f[recent]
    weights = np.exp(-(t[-1] - t) * math.log(2.0) / HALF_LIFE_S)
    return min(MAX_SIZED_FACTOR, max(1.0, weighted_quantile(f, weights, SIZING_QUANTILE)))


def observed_factors(mean_rps: FloatArray, peak_rps: FloatArray, window_s: float) -> FloatArray:
    """:func:`burst_factors` of a history whose peak rates may be missing altogether
    (an empty ``peak_rps``: all NaN)."""
    if peak_rps.size != mean_rps.size:
        return np.full(mean_rps.size, np.nan)
    return burst_factors(mean_rps, peak_rps, window_s)


def minute_bursts(spec: ModelServingSpec, obs: Observation) -> FloatArray:
    """Each interval's burst factor in ``obs`` (NaN where the peak short-window rate is
    unknown), for the spec's short window."""
    window = float(spec.metrics.burst_window_seconds)
    return observed_factors(obs.requests_per_second, obs.peak_requests_per_second, window)
