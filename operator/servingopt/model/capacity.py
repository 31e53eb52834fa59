"""Capacity at the SLO: how much traffic one replica takes while its p99 meets the target.

For every candidate ``(B, D)`` (max batch size, max queue delay) within the user's
bounds, the capacity is the first rate at which the predicted p99 crosses the SLO:

    cap(B, D) = sup { rate : p99(rate', B, D) <= SLO for every rate' <= rate }

"every rate' below" matters because the p99 is *not* always monotone in the rate: with
a long ``D`` a lightly loaded replica waits the whole timer for a batch that never
fills (p99 ~ ``D + t(1)``), and more traffic fills batches sooner, lowering the p99,
before queueing raises it again.  A replica scaled by an HPA sees every rate from zero
to its target, so the SLO must hold on the whole range.  In particular ``D + t(1)``
(the latency of a lone request, ``t(1)`` alone when ``B = 1``) must meet the SLO.

The rate is also capped at ``max_load_fraction`` (default 95 %) of the stability limit
``B / t(B)``: beyond it the queue is hypersensitive to any modelling error.

Search: candidates are visited in decreasing order of their stability limit; a
candidate is skipped with one evaluation when its p99 at the best rate found so far
already breaks the SLO; otherwise the crossing is bracketed and bisected to
``rel_tol``, then, for ``D > t(1)``, confirmed at a few lower rates (non-monotone
region).  Typically
~100 queue evaluations for a 6 x 6 grid.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from servingopt.model.profile import LatencyProfile
from servingopt.model.queue import QueuePrediction, predict, stability_limit_rps

__all__ = [
    "DEFAULT_BATCH_CANDIDATES",
    "DEFAULT_DELAY_CANDIDATES_MS",
    "CapacityAtSlo",
    "capacity_at_slo",
]

DEFAULT_BATCH_CANDIDATES: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
DEFAULT_DELAY_CANDIDATES_MS: tuple[float, ...] = (0.0, 1.0, 2.0, 5.0, 10.0)

_CONFIRM_FRACTIONS = (0.25, 0.5, 0.75, 0.9)


@dataclass(frozen=True)
class CapacityAtSlo:
    """Best batching settings and the per-replica rate they sustain within the SLO.

    Attributes:
        feasible: some candidate meets the SLO at a positive rate.  When false,
            ``rate_rps`` is 0 and the other fields describe the least-bad candidate
            (lowest zero-load p99) so reports can say by how much it misses.
        rate_rps: highest per-replica request rate with ``p99 <= slo`` (requests/s).
        max_batch: ``B`` achieving it.
        max_delay_ms: ``D`` achieving it.
        p99_ms: predicted p99 at ``rate_rps`` (<= ``slo_p99_ms`` when feasible).
        mean_batch: predicted mean batch size at ``rate_rps``.
        utilisation: predicted busy fraction at ``rate_rps``.
        stability_limit_rps: saturation throughput with this ``B``; ``rate_rps`` is at
            most ``max_load_fraction`` of it.
        slo_p99_ms: the target it was computed for.
    """

    feasible: bool
    rate_rps: float
    max_batch: int
    max_delay_ms: float
    p99_ms: float
    mean_batch: float
    utilisation: float
    stability_limit_rps: float
    slo_p99_ms: float


def _bounded(
    batches: Iterable[int],
    delays: Iterable[float],
    batch_bounds: tuple[int, int] | None,
    delay_bounds_ms: tuple[float, float] | None,
) -> tuple[list[int], list[float]]:
    bs = sorted({int(b) for b in batches if int(b) >= 1})
    ds = sorted({float(d) for d in delays if float(d) >= 0.0 and math.isfinite(float(d))})
    if batch_bounds is not None:
        lo, hi = batch_bounds
        bs = [b for b in bs if lo <= b <= hi]
    if delay_bounds_ms is not None:
        dlo, dhi = delay_bounds_ms
        ds = [d for d in ds if dlo <= d <= dhi]
    return bs, ds


def _crossing(
    profile: LatencyProfile,
    big_b: int,
    delay: float,
    slo: float,
    lo: float,
    hi: float,
    rel_tol: float,
    quantile: float,
    cv: float,
) -> float:
    """Largest rate in ``[lo, hi)`` with p99 <= slo, given p99(lo) ok and p99(hi) not."""
    while hi - lo > rel_tol * hi:
        mid = 0.5 * (lo + hi)
        if (
            predict(profile, mid, big_b, delay, quantile=quantile, service_cv=cv).p99_latency_ms
            <= slo
        ):
            lo = mid
        else:
            hi = mid
    return lo


def capacity_at_slo(
    profile: LatencyProfile,
    slo_p99_ms: float,
    batch_candidates: Sequence[int] = DEFAULT_BATCH_CANDIDATES,
    delay_candidates_ms: Sequence[float] = DEFAULT_DELAY_CANDIDATES_MS,
    *,
    batch_bounds: tuple[int, int] | None = None,
    delay_bounds_ms: tuple[float, float] | None = None,
    rel_tol: float = 0.005,
    quantile: float = 0.99,
    max_load_fraction: float = 0.95,
    service_cv: float = 0.0,
) -> CapacityAtSlo:
    """Highest per-replica rate whose predicted p99 meets ``slo_p99_ms``, and its ``(B, D)``.

    Args:
        profile: the replica's latency profile (already corrected, if learning applies).
        slo_p99_ms: latency target for the chosen quantile (ms).
        batch_candidates: max batch sizes to try (``B``; 1 = no batching).
        delay_candidates_ms: max queue delays to try (``D``, ms).
        batch_bounds: inclusive ``(min, max)`` allowed by the user, or None.
        delay_bounds_ms: inclusive ``(min, max)`` allowed by the user, or None.
        rel_tol: relative precision of the returned rate.
        quantile: which latency quantile the SLO constrains (0.99 for p99).
        max_load_fraction: never plan a replica above this fraction of its stability
            limit, however loose the SLO: near saturation a small service-time error
            or a burst makes the queue explode, and the model is least accurate
            there (see docs/performance-model.md).  Default 0.95.
        service_cv: service-time coefficient of variation passed to
            :func:`~servingopt.model.queue.predict` (0: deterministic service).

    Returns:
        The best :class:`CapacityAtSlo`.  Ties (rates within ``rel_tol``) go to the
        lower p99.  ``feasible`` is false when no candidate meets the SLO even at
        vanishing load, or no candidate survives the bounds.
    """
    if not (slo_p99_ms > 0.0 and math.isfinite(slo_p99_ms)):
        raise ValueError("slo_p99_ms must be a finite number > 0")
    if not 0.0 < rel_tol < 0.5:
        raise ValueError("rel_tol must be in (0, 0.5)")
    if not 0.0 < max_load_fraction < 1.0:
        raise ValueError("max_load_fraction must be in (0, 1)")
    bs, ds = _bounded(batch_candidates, delay_candidates_ms, batch_bounds, delay_bounds_ms)
    combos: list[tuple[int, float]] = []
    for b in bs:
        if b == 1:
            combos.append((1, ds[0] if ds else 0.0))  # B = 1 never waits: D is moot
        else:
            combos.extend((b, d) for d in ds)
    if not combos:
        return CapacityAtSlo(
            feasible=False,
            rate_rps=0.0,
            max_batch=0,
            max_delay_ms=0.0,
            p99_ms=math.inf,
            mean_batch=0.0,
            utilisation=0.0,
            stability_limit_rps=0.0,
            slo_p99_ms=slo_p99_ms,
        )
    limits = {b: stability_limit_rps(profile, b) for b, _ in combos}
    combos.sort(key=lambda c: (-limits[c[0]], c[1], c[0]))

    best: QueuePrediction | None = None
    least_bad: QueuePrediction | None = None
    for b, d in combos:
        limit = limits[b]
        top = max_load_fraction * limit
        idle = predict(profile, 0.0, b, d, quantile=quantile, service_cv=service_cv)
        if least_bad is None or idle.p99_latency_ms < least_bad.p99_latency_ms:
            least_bad = idle
        if idle.p99_latency_ms > slo_p99_ms:
            continue
        lo = 0.0
        if best is not None:
            if top <= best.rate_rps * (1.0 + rel_tol):
                continue  # cannot beat the incumbent
            probe = best.rate_rps * (1.0 + rel_tol)
            if (
                predict(
                    profile, probe, b, d, quantile=quantile, service_cv=service_cv
                ).p99_latency_ms
                > slo_p99_ms
            ):
                continue
            lo = probe
        if (
            predict(profile, top, b, d, quantile=quantile, service_cv=service_cv).p99_latency_ms
            <= slo_p99_ms
        ):
            rate = top
        else:
            rate = _crossing(profile, b, d, slo_p99_ms, lo, top, rel_tol, quantile, service_cv)
        # the SLO must hold on the whole range below: p99 can dip and rise at low load
        # when D is long (in our checks never for D <= t(1), so those skip this)
        long_delay = b > 1 and d > float(profile.service_time_ms(1))
        for frac in _CONFIRM_FRACTIONS if long_delay else ():
            r = rate * frac
            if r > 0.0 and predict(
                profile, r, b, d, quantile=quantile, service_cv=service_cv
            ).p99_latency_ms > (slo_p99_ms):
                rate = _crossing(profile, b, d, slo_p99_ms, 0.0, r, rel_tol, quantile, service_cv)
                break
        if rate <= 0.0:
            continue
        pred = predict(profile, rate, b, d, quantile=quantile, service_cv=service_cv)
        if (
            best is None
            or rate > best.rate_rps * (1.0 + rel_tol)
            or (
                rate >= best.rate_rps * (1.0 - rel_tol)
                and pred.p99_latency_ms < best.p99_latency_ms
            )
        ):
            best = pred

    if best is None:
        lb = least_bad
        assert lb is not None
        return CapacityAtSlo(
            feasible=False,
            rate_rps=0.0,
            max_batch=lb.max_batch,
            max_delay_ms=lb.max_delay_ms,
            p99_ms=lb.p99_latency_ms,
            mean_batch=lb.mean_batch,
            utilisation=0.0,
            stability_limit_rps=lb.stability_limit_rps,
            slo_p99_ms=slo_p99_ms,
        )
    return CapacityAtSlo(
        feasible=True,
        rate_rps=best.rate_rps,
        max_batch=best.max_batch,
        max_delay_ms=best.max_delay_ms,
        p99_ms=best.p99_latency_ms,
        mean_batch=best.mean_batch,
        utilisation=best.utilisation,
        stability_limit_rps=best.stability_limit_rps,
        slo_p99_ms=slo_p99_ms,
    )
