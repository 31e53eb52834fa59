"""Which (instance type, variant) pairs a plan may choose, and what one replica serves.

A pair is a candidate when the policy and the spec allow its instance type, its
variant meets ``slo.minAccuracy``, it has a measured latency profile on that type (no
guessing across hardware), the model fits the GPU (or the pod's) memory and the pod
fits the node.  Its profile is corrected by what was learned from live metrics, and
:func:`performance_grid` gives the capacity at the SLO of every (candidate, max batch
B, max queue delay D) at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from servingopt.api import InstanceCatalog, InstanceType, ModelServingSpec, ServingPolicySpec
from servingopt.api import Variant as VariantSpec
from servingopt.api.modelserving import Resources
from servingopt.model import LatencyProfile, ProfileCorrection
from servingopt.optimize import bursts, cache, perfgrid
from servingopt.optimize.decision import Alternative
from servingopt.optimize.instances import fit_problem, model_fits, pods_per_node
from servingopt.optimize.learning import Learned, learn_all
from servingopt.optimize.plantypes import Candidate, CandidateSet, FloatArray
from servingopt.optimize.queue_table import MAX_TABLE_BATCH
from servingopt.values import CorrectionKey, Observation

BATCH_STEPS = (1, 2, 4, 8, 16, 32, 64)
DELAY_STEPS_MS = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)


def batch_candidates(spec: ModelServingSpec) -> list[int]:
    """Max batch sizes to consider (powers of two and the bounds, at most 64)."""
    bat = spec.batching
    if not bat.enabled:
        return [1]
    lo, hi = bat.max_batch_size.min, bat.max_batch_size.max
    found = {b for b in BATCH_STEPS if lo <= b <= hi} | {lo, hi}
    return sorted({min(b, MAX_TABLE_BATCH) for b in found})


def delay_candidates(spec: ModelServingSpec) -> list[float]:
    """Max queue delays (ms) to consider within the bounds."""
    bat = spec.batching
    if not bat.enabled:
        return [0.0]
    lo = bat.max_queue_delay_microseconds.min / 1000.0
    hi = bat.max_queue_delay_microseconds.max / 1000.0
    return sorted({d for d in DELAY_STEPS_MS if lo <= d <= hi} | {lo, hi})


def capacity_types(spec: ModelServingSpec, policy: ServingPolicySpec) -> list[str]:
    """Capacity types both the spec and the policy allow (spot needs a spot share)."""
    allowed: list[str] = [
        c
        for c in ("on-demand", "spot")
        if c in spec.candidates.capacity_types and c in policy.allowed_capacity_types
    ]
    if "on-demand" in allowed and policy.spot.max_percent == 0:
        return ["on-demand"]
    return allowed


def find_candidates(
    spec: ModelServingSpec,
    catalog: InstanceCatalog,
    policy: ServingPolicySpec,
    obs: Observation,
    burst_factors: FloatArray | None = None,
) -> CandidateSet:
    """The candidates, the pairs rejected on the way, and corrections learned from
    the observed p99s (they scale each candidate's service times). ``burst_factors``:
    the history's, when the caller has them (else read from ``obs``)."""
    types, type_reasons = _allowed_types(spec, catalog, policy)
    variants, accuracy_reasons = _accurate_variants(spec)
    points, fits, rejected = _viable(spec, obs, types, variants)
    if burst_factors is None:
        burst_factors = bursts.minute_bursts(spec, obs)
    learned = _learn(spec, obs, points, burst_factors)
    corrections = learned.corrections
    now = float(obs.timestamps_s[-1]) if obs.timestamps_s.size else None
    candidates = [
        Candidate(
            t, v.name, points[(t.name, v.name)], _factor(corrections, (t.name, v.name), now), p, pc
        )
        for t, v, p, pc in fits
    ]
    return CandidateSet(
        candidates,
        rejected,
        [*type_reasons, *accuracy_reasons, *learned.reasons],
        corrections,
        learned.model_error,
    )


def performance_grid(spec: ModelServingSpec, candidates: Sequence[Candidate]) -> perfgrid.PerfGrid:
    """Capacity at the SLO, stability limit and p99 curves of every (candidate, B, D),
    without the capacity no burst or learned correction may rely on."""
    batches, delays = batch_candidates(spec), delay_candidates(spec)
    factors = [c.factor for c in candidates]
    one, full, shape = perfgrid.points_arrays([c.points for c in candidates], batches, factors)
    grid = perfgrid.build(one, full, shape, batches, delays, spec.slo.latency_p99_ms)
    return _safe_capacity(grid, full, factors, spec.slo.latency_p99_ms)


def _safe_capacity(
    grid: perfgrid.PerfGrid, full_ms: FloatArray, factors: Sequence[float], slo_ms: float
) -> perfgrid.PerfGrid:
    """The grid without the capacity no burst or learned correction may rely on.

    * A max batch B whose own service time (plus the queue delay) exceeds the SLO gets
      no capacity: the queue model meets the SLO there only while batches stay small,
      and a burst that fills them makes every request in them miss.
    * A correction below 1 is learned from p99s at the loads seen, not from full
      batches: capacity stays within the declared stability limit ``1000 B / t(B)``.
    """
    wait = np.where(grid.batches[:, None] > 1, grid.delays_ms[None, :], 0.0)
    too_slow = full_ms[:, :, None] + wait[None, :, :] > slo_ms
    shrink = np.minimum(np.asarray(factors, dtype=np.float64), 1.0)
    declared = perfgrid.MAX_LOAD_FRACTION * grid.limit_rps * shrink[:, None]
    capacity = np.where(too_slow, 0.0, np.minimum(grid.capacity_rps, declared[:, :, None]))
    return replace(grid, capacity_rps=capacity)


def _allowed_types(
    spec: ModelServingSpec, catalog: InstanceCatalog, policy: ServingPolicySpec
) -> tuple[list[InstanceType], list[str]]:
    """Catalog types in the policy's ``allowedPools`` and the spec's candidates."""
    reasons = []
    types = catalog.spec.instance_types
    if policy.allowed_pools:
        kept = [t for t in types if t.pool in policy.allowed_pools]
        if len(kept) < len(types):
            reasons.append(f"policy: {len(types) - len(kept)} instance types outside allowedPools")
        types = kept
    cand = spec.candidates
    if cand.pools:
        types = [t for t in types if t.pool in cand.pools]
    if cand.instance_types:
        types = [t for t in types if t.name in cand.instance_types]
    return types, reasons


def _accurate_variants(spec: ModelServingSpec) -> tuple[list[VariantSpec], list[str]]:
    """Variants meeting ``slo.minAccuracy`` (unset accuracy fails a set floor)."""
    floor = spec.slo.min_accuracy
    usable, reasons = [], []
    for v in spec.variants or [VariantSpec(name="default")]:
        if floor is not None and (v.accuracy is None or v.accuracy < floor):
            shown = "unknown" if v.accuracy is None else f"{v.accuracy:g}"
            reasons.append(f"accuracy: variant {v.name} ({shown}) below minAccuracy {floor:g}")
        else:
            usable.append(v)
    return usable, reasons


class _Fit(NamedTuple):
    """A pair that fits, before learning: pods per node without and with the cache."""

    itype: InstanceType
    variant: VariantSpec
    pods_per_node: int
    pods_per_node_cached: int


def _viable(
    spec: ModelServingSpec,
    obs: Observation,
    types: Sequence[InstanceType],
    variants: Sequence[VariantSpec],
) -> tuple[dict[CorrectionKey, perfgrid.Points], list[_Fit], list[Alternative]]:
    """(type, variant) pairs with a profile, a model that fits and a pod that fits.

    Returns their measured points, the pairs that fit and the rejected pairs with why.
    """
    raw: dict[CorrectionKey, perfgrid.Points] = {}
    fits: list[_Fit] = []
    rejected: list[Alternative] = []
    cache_size = cache.size_mib(spec, obs)
    res = spec.resources or Resources()
    cpu, mem = res.cpu_millicores, res.memory_mi_b
    measured = {v.name: _points(v) for v in variants}
    for t in types:
        ppn = pods_per_node(t, cpu, mem)
        ppn_cached = pods_per_node(t, cpu, mem + cache_size)
        for v in variants:
            problem = model_fits(t, v.memory_mi_b, mem)
            points = measured[v.name].get(t.name)
            if points is None:
                problem = problem or "no latency profile for this instance type"
            elif ppn == 0:
                problem = problem or fit_problem(t, cpu, mem)
            if problem or points is None:
                rejected.append(Alternative(t.name, v.name, None, None, None, None, problem or ""))
                continue
            raw[(t.name, v.name)] = points
            fits.append(_Fit(t, v, ppn, ppn_cached))
    return raw, fits, rejected


def _points(variant: VariantSpec) -> dict[str, perfgrid.Points]:
    """Measured (batch sizes, service times) of a variant, by instance type."""
    return {
        prof.instance_type: (
            tuple(float(p.batch_size) for p in prof.points),
            tuple(p.latency_ms for p in prof.points),
        )
        for prof in variant.profiles
    }


def _learn(
    spec: ModelServingSpec,
    obs: Observation,
    points: Mapping[CorrectionKey, perfgrid.Points],
    burst_factors: FloatArray,
) -> Learned:
    """Corrections from the observed p99s of what ran, what was learned, and how wrong
    the model has been.

    The history's batches are taken as the largest allowed B; its queue delay as the
    running one, else the smallest allowed D.
    """
    batches, delays = batch_candidates(spec), delay_candidates(spec)
    current_delay = obs.current.max_queue_delay_ms
    return learn_all(
        obs,
        lambda key: _latency_profile(points[key], key) if key in points else None,
        batches[-1],
        current_delay if current_delay is not None else delays[0],
        burst_factors,
    )


@lru_cache(maxsize=256)
def _latency_profile(points: perfgrid.Points, key: CorrectionKey) -> LatencyProfile:
    # immutable and the same at every re-plan: fit the declared points once
    return LatencyProfile.from_points(points[0], points[1], label=f"{key[0]}/{key[1]}")


def _factor(
    corrections: Mapping[CorrectionKey, ProfileCorrection], key: CorrectionKey, now: float | None
) -> float:
    """The key's correction at ``now`` (decayed with the age of its evidence)."""
    corr = corrections.get(key)
    return 1.0 if corr is None else corr.factor_at(now)
