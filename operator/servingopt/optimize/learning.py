"""Learning from live metrics: fold observed p99 into per-(type, variant) corrections.

History rows say what ran (``instance_type``, ``variant``, ``max_batch_size``), how
many replicas served and the observed p99.  Rows are grouped by what ran, bucketed by
load per replica (at most :data:`BUCKETS` buckets of the most recent
:data:`MAX_ROWS` rows, medians inside each), and every bucket is one
:meth:`ProfileCorrection.update`: observed p99 against the p99 predicted with the
profile already scaled by the current factor (a damped fixed-point iteration, see
:mod:`servingopt.values.correction`).  Corrections without new evidence decay toward 1
with the age of their evidence (:meth:`ProfileCorrection.factor_at`); "now" is the
history's newest interval.

How wrong the model has been (:func:`learn_all`'s ``model_error``): for every bucket,
the service-time factor at which the model predicts the observed p99, over the factor
the plan uses (after this plan's updates) — the relative capacity error the model
still makes there, optimistic side only (a pessimistic model costs money, not the
SLO).  Its :data:`ERROR_QUANTILE` quantile over the buckets, once there are at least
:data:`MIN_ERROR_BUCKETS`, sizes the HPA target's margin and the guard's risk.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from servingopt.model import LatencyProfile, ProfileCorrection
from servingopt.optimize import perfgrid
from servingopt.optimize.queue_table import MAX_TABLE_BATCH
from servingopt.values import CorrectionKey, FloatArray, Observation

IntArray = npt.NDArray[np.int64]

MAX_ROWS = 240
BUCKETS = 6
#: The model's error is this quantile of the buckets' relative capacity errors ...
ERROR_QUANTILE = 0.9
#: ... once there are at least this many buckets.
MIN_ERROR_BUCKETS = 3
#: Relative errors are measured up to this (the factor search's range).
MAX_MODEL_ERROR = 1.0
_ERROR_SEARCH_STEPS = 5  # within a bracket of log(observed / predicted)


class Learned(NamedTuple):
    """What one plan learned from the history."""

    corrections: dict[CorrectionKey, ProfileCorrection]
    reasons: list[str]
    model_error: float | None
    """How wrong the model has been (see the module docs; None: too little evidence)."""


def _predicted_p99(
    times: Callable[[int], float],
    shape: float,
    factor: float,
    rate: float,
    batch: int,
    delay_ms: float,
) -> float:
    one, full = times(1) * factor, times(batch) * factor
    return perfgrid.p99_one(one, full, shape, batch, delay_ms, rate)


def _service_times(profile: LatencyProfile) -> Callable[[int], float]:
    """The profile's service time of a batch size, each size evaluated once."""
    known: dict[int, float] = {}

    def time_ms(batch: int) -> float:
        if batch not in known:
            known[batch] = float(profile.service_time_ms(float(batch)))
        return known[batch]

    return time_ms


def learn(
    observation: Observation,
    profile_for: Callable[[CorrectionKey], LatencyProfile | None],
    default_batch: int,
    delay_ms: float,
) -> tuple[dict[CorrectionKey, ProfileCorrection], list[str]]:
    """Updated corrections and one reason per key that learned something.

    ``profile_for`` gives the measured profile of a key (None: not a candidate).
    """
    learned = learn_all(observation, profile_for, default_batch, delay_ms)
    return learned.corrections, learned.reasons


def learn_all(
    observation: Observation,
    profile_for: Callable[[CorrectionKey], LatencyProfile | None],
    default_batch: int,
    delay_ms: float,
    burst_factors: FloatArray | None = None,
) -> Learned:
    """:func:`learn`, and how wrong the model has been on the evidence.

    ``burst_factors`` (per interval, NaN where unknown): an interval's p99 is that of
    its busiest seconds, so its load is taken as the mean times the burst factor; a
    burst is then not read as slower service (and an interval whose bursts exceed
    what a replica can serve at all teaches nothing)."""
    out = dict(observation.corrections)
    reasons: list[str] = []
    errors: list[float] = []
    times_s = observation.timestamps_s
    now = float(times_s[-1]) if times_s.size else None
    evidence = _evidence(observation, burst_factors)
    for key, rows in evidence.items():
        profile = profile_for(key)
        if profile is None:
            continue
        corr = out.get(key, ProfileCorrection()).aged(now)
        before = corr.factor
        times = _service_times(profile)
        a, c = profile.a_ms, profile.c_ms
        shape = a / (a + c) if a + c > 0 else 0.0
        used: list[tuple[float, float, int]] = []
        for rate, observed, batch in rows:
            b = int(min(max(batch if batch >= 1 else default_batch, 1), MAX_TABLE_BATCH))
            predicted = _predicted_p99(times, shape, corr.factor, rate, b, delay_ms)
            if np.isfinite(predicted):
                corr = corr.update(observed, predicted)
                used.append((rate, observed, b))
        out[key] = corr
        errors.extend(
            _capacity_error(times, shape, corr.factor, rate, observed, b, delay_ms)
            for rate, observed, b in used
        )
        if corr.observations and abs(corr.factor - before) > 1e-9:
            reasons.append(
                f"learning: {key[0]}/{key[1]} service times x{corr.factor:.2f} "
                f"(observed p99 vs profile, {corr.observations} updates)"
            )
    for key, corr in list(out.items()):
        if key not in evidence:
            out[key] = corr.stamped(now)
    return Learned(out, reasons, model_error(errors))


def model_error(errors: list[float]) -> float | None:
    """The :data:`ERROR_QUANTILE` quantile of the buckets' relative capacity errors
    (None with fewer than :data:`MIN_ERROR_BUCKETS`)."""
    if len(errors) < MIN_ERROR_BUCKETS:
        return None
    ordered = sorted(errors)  # a few buckets: np.quantile's machinery costs more
    virtual = (len(ordered) - 1) * ERROR_QUANTILE
    lo = math.floor(virtual)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (virtual - lo)


def _capacity_error(
    times: Callable[[int], float],
    shape: float,
    factor: float,
    rate: float,
    observed: float,
    batch: int,
    delay_ms: float,
) -> float:
    """How much slower than ``factor`` the service would have to be for the model to
    predict ``observed`` at ``rate`` (0 when the model is not optimistic there; at
    most :data:`MAX_MODEL_ERROR`): bisection on log(factor), p99 increasing in it.

    The p99 grows at least in proportion to the service time (queueing only adds), so
    the factor sought is at most ``factor x observed / predicted``: the search starts
    from that bracket, which is narrow when the model is nearly right."""

    def p99(f: float) -> float:
        return _predicted_p99(times, shape, f, rate, batch, delay_ms)

    predicted = p99(factor)
    if not predicted < observed:
        return 0.0
    lo, hi = 0.0, math.log(min(observed / predicted, 1.0 + MAX_MODEL_ERROR))
    if p99(factor * math.exp(hi)) < observed:  # a queue delay D does not scale with f
        if hi >= math.log1p(MAX_MODEL_ERROR):
            return MAX_MODEL_ERROR
        lo, hi = hi, math.log1p(MAX_MODEL_ERROR)
        if p99(factor * math.exp(hi)) < observed:
            return MAX_MODEL_ERROR
    for _ in range(_ERROR_SEARCH_STEPS):
        mid = 0.5 * (lo + hi)
        if p99(factor * math.exp(mid)) < observed:
            lo = mid
        else:
            hi = mid
    return math.expm1(0.5 * (lo + hi))


def _evidence(
    obs: Observation, burst_factors: FloatArray | None = None
) -> dict[CorrectionKey, list[tuple[float, float, float]]]:
    """(load per replica, observed p99, max batch) buckets per (type, variant); the
    load in the interval's bursts where ``burst_factors`` says so."""
    n = obs.requests_per_second.size
    if n == 0 or obs.p99_latency_ms.size != n or obs.replicas.size != n:
        return {}
    batches = (
        obs.max_batch_sizes
        if obs.max_batch_sizes.size == n
        else np.full(n, float(obs.current.max_batch_size or 0))
    )
    ok = (
        np.isfinite(obs.p99_latency_ms)
        & (obs.p99_latency_ms > 0)
        & np.isfinite(obs.replicas)
        & (obs.replicas > 0)
        & (obs.requests_per_second > 0)
    )
    rate = np.where(ok, obs.requests_per_second / np.where(ok, obs.replicas, 1.0), 0.0)
    if burst_factors is not None and burst_factors.size == n:
        rate = rate * np.where(np.isfinite(burst_factors), burst_factors, 1.0)
    out: dict[CorrectionKey, list[tuple[float, float, float]]] = {}
    for key, idx in _rows_by_config(obs, ok).items():
        rows = idx[-MAX_ROWS:]
        order = rows[np.argsort(rate[rows], kind="stable")]
        parts = np.array_split(np.arange(order.size), min(BUCKETS, order.size))
        bounds = np.array([p[0] for p in parts] + [order.size])
        out[key] = list(
            zip(
                _sorted_medians(rate[order], bounds).tolist(),
                _medians(obs.p99_latency_ms[order], bounds).tolist(),
                np.nan_to_num(_medians(batches[order], bounds), nan=0.0).tolist(),
                strict=True,
            )
        )
    return out


def _rows_by_config(obs: Observation, ok: npt.NDArray[np.bool_]) -> dict[CorrectionKey, IntArray]:
    """Indices of the usable rows per (type, variant), keys in order of first use.

    Configurations change rarely, so the history is a few long runs: find the runs
    with one vectorised comparison and group them, instead of visiting every row.
    """
    n = ok.size
    type_labels = obs.instance_types or (obs.current.instance_type or "",) * n
    variant_labels = obs.variants or (obs.current.variant or "",) * n
    if _one_value(type_labels) and _one_value(variant_labels):  # the usual: one run
        key = (type_labels[0], variant_labels[0]) if n else ("", "")
        rows = np.flatnonzero(ok)
        return {key: rows} if key[0] and key[1] and rows.size else {}
    types = np.array(type_labels, dtype=object)
    variants = np.array(variant_labels, dtype=object)
    starts = np.concatenate(
        [[0], np.flatnonzero((types[1:] != types[:-1]) | (variants[1:] != variants[:-1])) + 1]
    )
    ends = np.append(starts[1:], n)
    runs: dict[CorrectionKey, list[IntArray]] = {}
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        key = (str(types[start]), str(variants[start]))
        if key[0] and key[1]:
            runs.setdefault(key, []).append(start + np.flatnonzero(ok[start:end]))
    grouped = {key: np.concatenate(parts) for key, parts in runs.items()}
    used = {key: idx for key, idx in grouped.items() if idx.size}
    return dict(sorted(used.items(), key=lambda item: int(item[1][0])))


def _one_value(labels: tuple[str, ...]) -> bool:
    """Whether every label is the first (a C-level count, no array built)."""
    return not labels or labels.count(labels[0]) == len(labels)


def _sorted_medians(values: FloatArray, bounds: IntArray) -> FloatArray:
    """:func:`_medians` of values already sorted within each slice (no NaN)."""
    lo, hi = bounds[:-1], bounds[1:]
    mid: FloatArray = (values[lo + (hi - lo - 1) // 2] + values[lo + (hi - lo) // 2]) / 2.0
    return mid


def _medians(values: FloatArray, bounds: IntArray) -> FloatArray:
    """``np.median`` of each slice ``values[bounds[k]:bounds[k + 1]]`` (NaN if any is)."""
    ids = np.repeat(np.arange(bounds.size - 1), np.diff(bounds))
    ordered = values[np.lexsort((values, ids))]
    lo, hi = bounds[:-1], bounds[1:]
    mid = (ordered[lo + (hi - lo - 1) // 2] + ordered[lo + (hi - lo) // 2]) / 2.0
    has_nan = np.logical_or.reduceat(np.isnan(values), lo) if values.size else np.zeros(0, bool)
    return np.where(has_nan, np.nan, mid)
