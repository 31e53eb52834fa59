"""``plan()``: the cheapest configuration that meets the SLO, with its reasons.

A pure function of the ModelServing spec, the instance catalog, the serving policy
and an :class:`Observation`.  Steps (see ``docs/decision-engine.md``):

1. demand: forecast from the history (or the given rate), traffic class;
2. candidates: allowed (pool, instance type) x variants meeting the accuracy floor,
   with a latency profile, whose model fits the GPU (or pod) memory and whose pod
   fits the node; profiles corrected by what was learned from live metrics;
3. performance: capacity at the SLO of every (candidate, B, D) at once
   (:mod:`~servingopt.optimize.perfgrid`); the best (B, D) per candidate is the one
   needing the fewest replicas (the most throughput per dollar), then the one with the
   most capacity (headroom), then the lowest p99;
4. cost: replicas for the demand at the HPA target, nodes from pods per node, per
   capacity type (on-demand, or the policy's spot mix with interruption risk), with
   and without the response cache;
5. choice: the cheapest row meeting latency, replica bounds and budgets; otherwise
   the least-bad one, flagged infeasible;
6. autoscaling: target, min/max replicas and HPA behavior for the chosen row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache

import numpy as np
import numpy.typing as npt

from servingopt.api import InstanceCatalog, InstanceType, ModelServingSpec, ServingPolicySpec
from servingopt.api import Variant as VariantSpec
from servingopt.api.modelserving import Resources
from servingopt.model import LatencyProfile, ProfileCorrection
from servingopt.optimize import autoscaling, perfgrid
from servingopt.optimize.decision import Alternative, CacheDecision, Decision
from servingopt.optimize.forecast import Forecast, constant, forecast
from servingopt.optimize.instances import (
    MIB_PER_GIB,
    Pricing,
    SpotMix,
    cost_on_demand,
    cost_spot_mix,
    fit_problem,
    model_fits,
    pods_per_node,
)
from servingopt.optimize.learning import learn
from servingopt.optimize.observation import CorrectionKey, Observation, RunningConfig
from servingopt.optimize.queue_table import MAX_TABLE_BATCH
from servingopt.optimize.traffic import UNKNOWN, TrafficProfile, classify

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

BATCH_STEPS = (1, 2, 4, 8, 16, 32, 64)
DELAY_STEPS_MS = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
MAX_ALTERNATIVES = 8
_INF_REPLICAS = 10**9


@dataclass(frozen=True)
class _Candidate:
    itype: InstanceType
    variant: str
    points: perfgrid.Points
    factor: float  # learned service-time correction
    pods_per_node: int
    pods_per_node_cached: int


@dataclass(frozen=True, eq=False)
class _Rows:
    """Every (candidate, cache scenario, capacity type) row, flattened to arrays."""

    cand: IntArray
    cache_on: npt.NDArray[np.bool_]
    spot: npt.NDArray[np.bool_]
    batch_idx: IntArray
    delay_idx: IntArray
    replicas: IntArray
    needed: IntArray  # replicas the demand needs (before the replica bounds)
    capacity: FloatArray  # per replica at the SLO
    target: FloatArray
    p99: FloatArray
    cost: FloatArray  # the bill: nodes x price + spot interruption risk
    rank_cost: FloatArray  # bill + the cache's own memory cost
    cache_cost: FloatArray
    od_replicas: IntArray
    spot_replicas: IntArray
    risk: FloatArray
    latency_ok: npt.NDArray[np.bool_]
    bounds_ok: npt.NDArray[np.bool_]
    budget_ok: npt.NDArray[np.bool_]
    change_ok: npt.NDArray[np.bool_]  # worth leaving the running placement for

    @cached_property
    def feasible(self) -> npt.NDArray[np.bool_]:
        return self.latency_ok & self.bounds_ok & self.budget_ok & self.change_ok


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


def _points(variant: VariantSpec) -> dict[str, perfgrid.Points]:
    """Measured (batch sizes, service times) of a variant, by instance type."""
    return {
        prof.instance_type: (
            tuple(float(p.batch_size) for p in prof.points),
            tuple(p.latency_ms for p in prof.points),
        )
        for prof in variant.profiles
    }


@lru_cache(maxsize=256)
def _latency_profile(points: perfgrid.Points, key: CorrectionKey) -> LatencyProfile:
    # immutable and the same at every re-plan: fit the declared points once
    return LatencyProfile.from_points(points[0], points[1], label=f"{key[0]}/{key[1]}")


def _allowed_types(
    spec: ModelServingSpec, catalog: InstanceCatalog, policy: ServingPolicySpec
) -> tuple[list[InstanceType], list[str]]:
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


def _capacity_types(spec: ModelServingSpec, policy: ServingPolicySpec) -> list[str]:
    """Capacity types both the spec and the policy allow (spot needs a spot share)."""
    allowed: list[str] = [
        c
        for c in ("on-demand", "spot")
        if c in spec.candidates.capacity_types and c in policy.allowed_capacity_types
    ]
    if "on-demand" in allowed and policy.spot.max_percent == 0:
        return ["on-demand"]
    return allowed


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


def _viable(
    spec: ModelServingSpec,
    obs: Observation,
    types: Sequence[InstanceType],
    variants: Sequence[VariantSpec],
) -> tuple[
    dict[CorrectionKey, perfgrid.Points],
    list[tuple[InstanceType, VariantSpec, int, int]],
    list[Alternative],
]:
    """(type, variant) pairs with a profile, a model that fits and a pod that fits.

    Returns their measured points, (type, variant, pods per node without and with the
    cache) and the rejected pairs with why.
    """
    raw: dict[CorrectionKey, perfgrid.Points] = {}
    shells: list[tuple[InstanceType, VariantSpec, int, int]] = []
    rejected: list[Alternative] = []
    cache_size = _cache_size(spec, obs)
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
            shells.append((t, v, ppn, ppn_cached))
    return raw, shells, rejected


def _demand(
    spec: ModelServingSpec, obs: Observation, horizon_s: float
) -> tuple[Forecast, TrafficProfile] | None:
    startup = spec.autoscaling.startup_seconds
    if obs.has_history:
        fc = forecast(obs.timestamps_s, obs.requests_per_second, horizon_s)
        return fc, classify(obs.timestamps_s, obs.requests_per_second, startup)
    if obs.demand_rps is not None and math.isfinite(obs.demand_rps) and obs.demand_rps >= 0:
        return constant(obs.demand_rps, horizon_s), UNKNOWN
    return None


def _empty_decision(spec: ModelServingSpec, reasons: Sequence[str], **kw: object) -> Decision:
    auto = spec.autoscaling
    fields: dict[str, object] = dict(
        slo_feasible=False,
        instance_type=None,
        pool=None,
        capacity_type=None,
        variant=None,
        min_replicas=auto.min_replicas,
        max_replicas=auto.max_replicas,
        scaling_metric=auto.metric_name,
        scaling_metric_type=auto.metric,
        target_rps_per_replica=0.0,
        target_value=0.0,
        behavior=autoscaling.behavior_for("unknown", auto.startup_seconds, 300),
        max_batch_size=1,
        max_queue_delay_ms=0.0,
        cache=CacheDecision(False),
        p99_latency_ms=None,
        capacity_per_replica_rps=0.0,
        hourly_cost=0.0,
        replicas=0,
        demand_rps=0.0,
        utilisation=0.0,
        on_demand_replicas=0,
        spot_replicas=0,
        interruption_cost_hourly=0.0,
        traffic="unknown",
        forecast_method="none",
        reasons=tuple(reasons),
        alternatives=(),
    )
    fields.update(kw)
    return Decision(**fields)  # type: ignore[arg-type]


def plan(
    spec: ModelServingSpec,
    catalog: InstanceCatalog,
    policy: ServingPolicySpec | None = None,
    observation: Observation | None = None,
    *,
    evaluator: autoscaling.Evaluator | None = autoscaling.replay_with_model,
    horizon_s: float = 3600.0,
) -> Decision:
    """Decide the cheapest serving configuration that meets ``spec.slo``.

    Never raises for infeasible inputs: the Decision says ``slo_feasible=False`` and
    its reasons say why.  ``evaluator`` replays candidate autoscaling settings over
    the history (None: choose them by the model's rules alone).
    """
    policy = policy or ServingPolicySpec()
    obs = observation or Observation()
    demand_info = _demand(spec, obs, horizon_s)
    if demand_info is None:
        return _empty_decision(spec, ["no demand: give a request-rate history or a demand rate"])
    fc, traffic = demand_info
    demand = obs.demand_rps if obs.demand_rps is not None else fc.peak_mean
    common = dict(traffic=traffic.kind, forecast_method=fc.method, demand_rps=demand)

    reasons: list[str] = []
    types, why = _allowed_types(spec, catalog, policy)
    reasons += why
    cap_types = _capacity_types(spec, policy)
    if not cap_types:
        return _empty_decision(
            spec, ["policy: no capacity type allowed by both candidates and policy"], **common
        )
    usable, why = _accurate_variants(spec)
    reasons += why
    raw, shells, rejected = _viable(spec, obs, types, usable)

    batches, delays = batch_candidates(spec), delay_candidates(spec)
    current_delay = obs.current.max_queue_delay_ms
    corrections, learned = learn(
        obs,
        lambda key: _latency_profile(raw[key], key) if key in raw else None,
        batches[-1],
        current_delay if current_delay is not None else delays[0],
    )
    reasons += learned
    cands = [
        _Candidate(t, v.name, raw[(t.name, v.name)], _factor(corrections, (t.name, v.name)), p, pc)
        for t, v, p, pc in shells
    ]
    if not cands:
        why_none = "no candidate configuration: " + (
            "; ".join(sorted({a.rejected for a in rejected})[:3]) or "no instance type allowed"
        )
        return _empty_decision(
            spec,
            [*reasons, why_none],
            alternatives=tuple(rejected[:MAX_ALTERNATIVES]),
            corrections=corrections,
            **common,
        )

    one, full, shape = perfgrid.points_arrays(
        [c.points for c in cands], batches, [c.factor for c in cands]
    )
    grid = perfgrid.build(one, full, shape, batches, delays, spec.slo.latency_p99_ms)
    grid = _safe_capacity(grid, full, [c.factor for c in cands], spec.slo.latency_p99_ms)
    fraction = autoscaling.target_fraction(policy.aggressiveness, traffic.ramp_per_startup)
    # minReplicas floors (spiky p75, predictive minimum) are capacity too: rank with them
    floor_rps, _ = autoscaling.floor_demand(
        traffic,
        fc,
        spec.autoscaling.startup_seconds + policy.replan_interval_seconds,
        obs.requests_per_second,
    )
    sizing = max(demand, floor_rps)
    startup = spec.autoscaling.startup_seconds
    prices = {cached: _pricing(cands, cached, startup) for cached in (False, True)}
    upper = max(fc.peak_upper, sizing)
    rows = _ranked_rows(
        spec, policy, obs, cands, grid, (sizing, upper), fraction, cap_types, prices
    )
    if rows.cand.size == 0:
        return _empty_decision(
            spec,
            [*reasons, "no candidate instance type offers an allowed capacity type"],
            alternatives=tuple(rejected[:MAX_ALTERNATIVES]),
            corrections=corrections,
            **common,
        )
    context = (fc, traffic, demand, evaluator, reasons, rejected, corrections)
    decision = _decide(spec, policy, obs, cands, grid, rows, *context, ranked_with=fraction)
    if isinstance(decision, float):
        # the replay chose another HPA margin: rank again with it, so that the choice
        # of instance type and the replicas it reports agree
        tuned = decision
        rows = _ranked_rows(
            spec, policy, obs, cands, grid, (sizing, upper), tuned, cap_types, prices
        )
        decision = _decide(spec, policy, obs, cands, grid, rows, *context, fractions=[tuned])
    assert isinstance(decision, Decision)
    return decision


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


def _factor(corrections: Mapping[CorrectionKey, ProfileCorrection], key: CorrectionKey) -> float:
    corr = corrections.get(key)
    return 1.0 if corr is None else corr.factor


def _hit_rate(spec: ModelServingSpec, obs: Observation) -> float:
    hit = obs.cache_hit_rate
    if hit is None:
        hit = spec.caching.expected_hit_rate or 0.0
    return min(max(float(hit), 0.0), 0.99)


def _cache_size(spec: ModelServingSpec, obs: Observation) -> int:
    size = obs.current.cache_size_mib if obs.current.cache_enabled else None
    return min(size or spec.caching.max_size_mi_b, spec.caching.max_size_mi_b)


def _pricing(cands: Sequence[_Candidate], cached: bool, startup_s: int) -> Pricing:
    return Pricing(
        on_demand_hourly=np.array([c.itype.on_demand_hourly for c in cands]),
        spot_hourly=np.array(
            [c.itype.spot_hourly if c.itype.spot_hourly else np.nan for c in cands]
        ),
        pods_per_node=np.array(
            [max(c.pods_per_node_cached if cached else c.pods_per_node, 1) for c in cands],
            dtype=np.int64,
        ),
        spot_interruptions_per_hour=np.array([c.itype.spot_interruptions_per_hour for c in cands]),
        replacement_hours=np.array(
            [(c.itype.provisioning_seconds + startup_s) / 3600.0 for c in cands]
        ),
        memory_mib=np.array([c.itype.memory_gi_b * MIB_PER_GIB for c in cands]),
    )


def _p99_at(
    grid: perfgrid.PerfGrid, i: IntArray, j: IntArray, k: IntArray, rate: FloatArray
) -> FloatArray:
    """Vectorised p99 of candidates ``(i, j, k)`` at per-replica ``rate``."""
    loads = grid.loads
    rho = rate / grid.limit_rps[i, j]
    pos = np.clip(np.searchsorted(loads, rho, side="right") - 1, 0, loads.size - 2)
    w = np.clip((rho - loads[pos]) / (loads[pos + 1] - loads[pos]), 0.0, 1.0)
    # the two curve points around each load, read from the flat grid (no curve copies)
    at = np.ravel_multi_index((i, j, k), grid.curves_ms.shape[:3]) * loads.size + pos
    flat = grid.curves_ms.reshape(-1)
    lo, hi = flat[at], flat[at + 1]
    with np.errstate(invalid="ignore"):
        out = lo + w * (hi - lo)
    return np.where(rho > loads[-1], np.inf, np.where(np.isfinite(out), out, np.inf))


def _best_setting(
    grid: perfgrid.PerfGrid, demands: FloatArray, fraction: float, floor: int
) -> tuple[IntArray, IntArray, IntArray, IntArray, FloatArray]:
    """Per demand and candidate ``(M, N)``: (B index, D index, replicas, needed, p99 at
    the load) of its best (B, D).  Several demands share one pass over the grid."""
    n, nb, nd = grid.capacity_rps.shape
    m = demands.size
    target = grid.capacity_rps * fraction
    wanted = demands[:, None, None, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        needed_f = np.where(target > 0, np.ceil(wanted / target - 1e-9), _INF_REPLICAS)
    needed = np.minimum(needed_f, _INF_REPLICAS).astype(np.int64).reshape(m, n, -1)
    replicas = np.maximum(needed, max(floor, 1))
    load = (wanted / replicas.reshape(m, n, nb, nd)).reshape(m, n, -1)
    # fewest replicas, then the most capacity (headroom for surges), then the lowest p99
    cap = grid.capacity_rps.reshape(1, n, -1)
    fewest = replicas == replicas.min(axis=2, keepdims=True)
    cap_m = np.where(fewest, cap, -np.inf)
    most = fewest & (cap_m >= cap_m.max(axis=2, keepdims=True))
    # the p99 decides only among those: evaluate it there alone
    mm, ii, cell = np.nonzero(most)
    p99_most = np.full(most.shape, np.inf)
    cj, ck = np.unravel_index(cell, (nb, nd))
    p99_most[mm, ii, cell] = _p99_at(grid, ii, cj, ck, load[mm, ii, cell])
    flat = np.argmin(p99_most, axis=2)
    bj, dk = np.unravel_index(flat, (nb, nd))
    at = (np.arange(m)[:, None], np.arange(n)[None, :], flat)
    rows = np.broadcast_to(np.arange(n), (m, n))
    return (
        bj.astype(np.int64),
        dk.astype(np.int64),
        replicas[at],
        needed[at],
        _p99_at(grid, rows.ravel(), bj.ravel(), dk.ravel(), load[at].ravel()).reshape(m, n),
    )


def _rows(
    spec: ModelServingSpec,
    policy: ServingPolicySpec,
    obs: Observation,
    cands: Sequence[_Candidate],
    grid: perfgrid.PerfGrid,
    demands: Sequence[float],
    fraction: float,
    cap_types: Sequence[str],
    prices: Mapping[bool, Pricing],
) -> list[_Rows]:
    """The rows at each of ``demands`` (computed together: one pass per column)."""
    hit = _hit_rate(spec, obs)
    mode = spec.caching.mode
    scenarios = {"Off": [False], "On": [True], "Auto": [False, True] if hit > 0 else [False]}[mode]
    size = _cache_size(spec, obs)
    budget = policy.budgets.max_hourly_cost_per_model_serving
    ns_budget = policy.budgets.max_hourly_cost_per_namespace
    room = math.inf if budget is None else budget
    if ns_budget is not None:
        room = min(room, ns_budget - obs.namespace_spend_hourly)
    n, m = len(cands), len(demands)
    wanted = np.asarray(demands, dtype=np.float64)
    idx = np.broadcast_to(np.arange(n), (m, n))
    parts: list[dict[str, npt.NDArray[np.generic]]] = []
    for cached in scenarios:
        loads = wanted * (1.0 - hit) if cached else wanted
        bj, dk, replicas, needed, p99 = _best_setting(
            grid, loads, fraction, spec.autoscaling.min_replicas
        )
        capacity = grid.capacity_rps[idx, bj, dk]
        pricing = prices[cached]
        share = size / pricing.memory_mib * pricing.on_demand_hourly if cached else np.zeros(n)
        cache_cost = share * replicas
        setting = dict(
            cand=idx,
            cache_on=np.full((m, n), cached),
            batch_idx=bj,
            delay_idx=dk,
            replicas=replicas,
            needed=needed,
            capacity=capacity,
            target=capacity * fraction,
            p99=p99,
            cache_cost=cache_cost,
        )
        for cap in cap_types:
            mix: SpotMix
            if cap == "spot":
                mix = cost_spot_mix(replicas, pricing, *_spot_terms(spec, policy))
                offered = np.broadcast_to(np.isfinite(pricing.spot_hourly), (m, n))
            else:
                mix = cost_on_demand(replicas, pricing)
                offered = np.ones((m, n), dtype=bool)
            parts.append(
                setting
                | dict(
                    offered=offered,
                    spot=np.full((m, n), cap == "spot"),
                    cost=mix.hourly_cost,
                    rank_cost=mix.hourly_cost + cache_cost,
                    od_replicas=mix.on_demand_replicas,
                    spot_replicas=mix.spot_replicas,
                    risk=mix.interruption_cost,
                )
            )
    # one concatenation per column, whatever the number of parts
    keep = np.concatenate([p.pop("offered") for p in parts], axis=1)
    columns = {k: np.concatenate([p[k] for p in parts], axis=1) for k in parts[0]}
    out = []
    for i in range(m):
        merged = {k: v[i][keep[i]] for k, v in columns.items()}
        latency_ok = (merged["capacity"] > 0) & (merged["p99"] <= spec.slo.latency_p99_ms)
        out.append(
            _Rows(
                **merged,
                latency_ok=latency_ok,
                bounds_ok=merged["needed"] <= spec.autoscaling.max_replicas,
                budget_ok=merged["cost"] <= room + 1e-9,
                change_ok=np.ones(merged["cost"].size, dtype=bool),
            )
        )
    return out


def _ranked_rows(
    spec: ModelServingSpec,
    policy: ServingPolicySpec,
    obs: Observation,
    cands: Sequence[_Candidate],
    grid: perfgrid.PerfGrid,
    demands: tuple[float, float],
    fraction: float,
    cap_types: Sequence[str],
    prices: Mapping[bool, Pricing],
) -> _Rows:
    """:func:`_rows` at the demand, with the moves that pay only below it ruled out.

    ``demands``: the demand to size for and the forecast's upper band.
    """
    if demands[1] <= demands[0]:
        return _rows(spec, policy, obs, cands, grid, demands[:1], fraction, cap_types, prices)[0]
    rows, ahead = _rows(spec, policy, obs, cands, grid, demands, fraction, cap_types, prices)
    return replace(rows, change_ok=_worth_moving(rows, ahead, cands, obs.current))


def _worth_moving(
    rows: _Rows, ahead: _Rows, cands: Sequence[_Candidate], current: RunningConfig
) -> npt.NDArray[np.bool_]:
    """Rows on the running placement, or no dearer than it at the upper band.

    Costs step with the replica count, and each placement steps at its own demands:
    one cheaper only below its next step (two replicas of one type against two of a
    dearer but faster one) loses the saving, and flips back, when demand rises
    within its forecast band. The running placement is measured at its best row
    that meets the SLO now; none (or none running): every row may win.
    """
    running = _on_running(rows, cands, current)
    now_ok = rows.latency_ok & rows.bounds_ok & rows.budget_ok
    if not (running & now_ok).any():
        return np.ones(rows.cand.size, dtype=bool)
    # the cost of each (candidate, cache, capacity type) at the upper band
    by_key = np.full(4 * len(cands), np.inf)
    by_key[_row_keys(ahead)] = np.where(ahead.feasible, ahead.rank_cost, np.inf)
    later = by_key[_row_keys(rows)]
    bar = float(later[running & now_ok].min())
    out: npt.NDArray[np.bool_] = running | (later <= bar + 1e-9)
    return out


def _row_keys(rows: _Rows) -> IntArray:
    """One integer per (candidate, cache scenario, capacity type): rows' identity."""
    return rows.cand * 4 + rows.cache_on.astype(np.int64) * 2 + rows.spot.astype(np.int64)


def _spot_terms(spec: ModelServingSpec, policy: ServingPolicySpec) -> tuple[int, int]:
    """(max spot percent, on-demand base); all spot when on-demand is not allowed."""
    if "on-demand" in spec.candidates.capacity_types and (
        "on-demand" in policy.allowed_capacity_types
    ):
        return policy.spot.max_percent, policy.spot.on_demand_base_replicas
    return 100, 0


def _mix_one(
    spec: ModelServingSpec,
    cand: _Candidate,
    cached: bool,
    spot: bool,
    replicas: int,
    policy: ServingPolicySpec,
    startup: int,
) -> SpotMix:
    pricing = _pricing([cand], cached, startup)
    r = np.array([replicas], dtype=np.int64)
    if spot:
        return cost_spot_mix(r, pricing, *_spot_terms(spec, policy))
    return cost_on_demand(r, pricing)


def _budget_replicas(
    cand: _Candidate,
    cached: bool,
    spot: bool,
    policy: ServingPolicySpec,
    obs: Observation,
    spec: ModelServingSpec,
) -> int | None:
    """Most replicas the budgets afford for this configuration (None: no budget)."""
    budget = policy.budgets.max_hourly_cost_per_model_serving
    ns_budget = policy.budgets.max_hourly_cost_per_namespace
    if budget is None and ns_budget is None:
        return None
    room = math.inf if budget is None else budget
    if ns_budget is not None:
        room = min(room, ns_budget - obs.namespace_spend_hourly)
    counts = np.arange(1, spec.autoscaling.max_replicas + 1, dtype=np.int64)
    pricing = _pricing([cand] * counts.size, cached, spec.autoscaling.startup_seconds)
    mix = (
        cost_spot_mix(counts, pricing, *_spot_terms(spec, policy))
        if spot
        else cost_on_demand(counts, pricing)
    )
    ok = np.flatnonzero(mix.hourly_cost <= room + 1e-9)
    return int(counts[ok[-1]]) if ok.size else 0


def _rejection(
    rows: _Rows,
    r: int,
    grid: perfgrid.PerfGrid,
    spec: ModelServingSpec,
    best_cost: float | None,
    room: float,
) -> str:
    if rows.feasible[r]:
        if best_cost is None:
            return ""
        delta = float(rows.rank_cost[r]) - best_cost
        if delta < 0.0005:
            return "same cost, ranked lower (less capacity headroom or higher p99)"
        pct = 100.0 * delta / best_cost if best_cost > 0 else 0.0
        return f"costs ${delta:.3f}/h more (+{pct:.0f}%)"
    slo = spec.slo.latency_p99_ms
    if not rows.latency_ok[r]:
        c = int(rows.cand[r])
        lone = float(np.min(grid.zero_load_p99_ms[c]))
        if lone > slo:
            return f"latency: p99 {lone:.1f} ms even unloaded > SLO {slo:g} ms"
        return f"latency: p99 {float(rows.p99[r]):.1f} ms at the load > SLO {slo:g} ms"
    if not rows.bounds_ok[r]:
        return (
            f"replicas: needs {int(rows.needed[r])}, maxReplicas is {spec.autoscaling.max_replicas}"
        )
    if not rows.budget_ok[r]:
        return f"budget: ${float(rows.cost[r]):.3f}/h over ${room:.3f}/h"
    return "stay: no cheaper than the running configuration at the forecast's upper band"


def _alternatives(
    rows: _Rows,
    win: int,
    cands: Sequence[_Candidate],
    grid: perfgrid.PerfGrid,
    spec: ModelServingSpec,
    room: float,
    rejected: Sequence[Alternative],
) -> tuple[Alternative, ...]:
    best_cost = float(rows.rank_cost[win]) if rows.feasible[win] else None
    # best row per (candidate, capacity type): feasible first, then cheapest
    order = np.lexsort((rows.rank_cost, ~rows.feasible))
    seen = {(int(rows.cand[win]), bool(rows.spot[win]))}
    feasible: list[Alternative] = []
    infeasible: list[Alternative] = []
    for r in order:
        key = (int(rows.cand[r]), bool(rows.spot[r]))
        if key in seen:
            continue
        seen.add(key)
        if rows.feasible[r] and len(feasible) >= 5:
            continue
        if not rows.feasible[r] and len(infeasible) >= MAX_ALTERNATIVES:
            break
        c = cands[key[0]]
        alt = Alternative(
            c.itype.name,
            c.variant,
            "spot" if key[1] else "on-demand",
            float(rows.cost[r]),
            float(rows.p99[r]),
            int(rows.replicas[r]),
            _rejection(rows, int(r), grid, spec, best_cost, room),
        )
        (feasible if rows.feasible[r] else infeasible).append(alt)
    out = feasible[:5]
    out += infeasible[: MAX_ALTERNATIVES - len(out)]
    out += list(rejected[: max(0, MAX_ALTERNATIVES - len(out))])
    return tuple(out)


def _ranking(rows: _Rows, cands: Sequence[_Candidate], current: RunningConfig) -> IntArray:
    """Rows by $/h, then the running placement (a tie is no reason to roll out), then
    most provisioned capacity, then lowest p99, then name."""
    names = np.array([f"{c.itype.name}/{c.variant}" for c in cands])[rows.cand]
    capacity_total = rows.capacity * rows.replicas
    moves = ~_on_running(rows, cands, current)
    return np.lexsort((names, rows.p99, -capacity_total, moves, rows.rank_cost)).astype(np.int64)


def _on_running(rows: _Rows, cands: Sequence[_Candidate], current: RunningConfig) -> BoolArray:
    """Rows on the running instance type, variant and capacity type."""
    here = np.array(
        [(c.itype.name, c.variant) == (current.instance_type, current.variant) for c in cands]
    )
    running: BoolArray = here[rows.cand] & (rows.spot == (current.capacity_type == "spot"))
    return running


def _winner(rows: _Rows, order: IntArray, grid: perfgrid.PerfGrid, n_cands: int) -> int:
    """The cheapest feasible row; else the least bad one."""
    feasible = rows.feasible[order]
    if feasible.any():
        return int(order[np.argmax(feasible)])
    if rows.latency_ok.any():  # blocked by replica bounds or budget: cheapest of those
        return int(order[np.argmax(rows.latency_ok[order])])
    # nothing meets the SLO: the lowest unloaded p99, then the cheapest
    lone = grid.zero_load_p99_ms.reshape(n_cands, -1).min(axis=1)[rows.cand]
    return int(np.lexsort((rows.rank_cost, lone))[0])


def _decide(
    spec: ModelServingSpec,
    policy: ServingPolicySpec,
    obs: Observation,
    cands: Sequence[_Candidate],
    grid: perfgrid.PerfGrid,
    rows: _Rows,
    fc: Forecast,
    traffic: TrafficProfile,
    demand: float,
    evaluator: autoscaling.Evaluator | None,
    reasons: list[str],
    rejected: Sequence[Alternative],
    corrections: Mapping[CorrectionKey, ProfileCorrection],
    fractions: Sequence[float] | None = None,
    ranked_with: float | None = None,
) -> Decision | float:
    """The Decision for the best row.

    When its autoscaling chose another HPA margin than ``ranked_with`` (the margin the
    rows were ranked with), that margin instead: the caller ranks again with it.
    """
    slo = spec.slo.latency_p99_ms
    auto = spec.autoscaling
    order = _ranking(rows, cands, obs.current)
    win = _winner(rows, order, grid, len(cands))
    room = _room(policy, obs)
    c = cands[int(rows.cand[win])]
    cached, spot = bool(rows.cache_on[win]), bool(rows.spot[win])
    bj, dk = int(rows.batch_idx[win]), int(rows.delay_idx[win])
    if not rows.latency_ok[win]:  # least bad: the (B, D) with the lowest unloaded p99
        flat = int(np.argmin(grid.zero_load_p99_ms[int(rows.cand[win])]))
        bj, dk = divmod(flat, grid.delays_ms.size)
    index = (int(rows.cand[win]), bj, dk)
    capacity = float(grid.capacity_rps[index])
    limit = float(grid.limit_rps[index[0], bj])
    hit = _hit_rate(spec, obs) if cached else 0.0
    load = demand * (1.0 - hit)
    per_replica = float(rows.cost[win]) / max(int(rows.replicas[win]), 1)
    budget_cap = _budget_replicas(c, cached, spot, policy, obs, spec)

    if capacity > 0:
        hpa = autoscaling.tune(
            capacity_rps=capacity,
            aggressiveness=policy.aggressiveness,
            traffic=traffic,
            forecast=fc,
            spec_min=auto.min_replicas,
            spec_max=auto.max_replicas,
            budget_max_replicas=budget_cap,
            startup_s=auto.startup_seconds,
            replan_interval_s=policy.replan_interval_seconds,
            hourly_cost_per_replica=per_replica,
            timestamps_s=obs.timestamps_s,
            history_rps=obs.requests_per_second,
            evaluator=evaluator,
            fractions=fractions,
        )
        if ranked_with is not None and abs(hpa.target_fraction - ranked_with) > 1e-9:
            return hpa.target_fraction
        target, low, high = hpa.target_rps, hpa.min_replicas, hpa.max_replicas
        needed = math.ceil(load / target - 1e-9) if target > 0 else _INF_REPLICAS
    else:  # least bad with no SLO capacity: half the stability limit per replica
        hpa = None
        target = 0.5 * limit
        needed = math.ceil(load / target - 1e-9) if target > 0 else _INF_REPLICAS
        ceiling = auto.max_replicas if budget_cap is None else budget_cap
        high = max(min(auto.max_replicas, ceiling), 1)
        low = min(auto.min_replicas, high)
    replicas = min(max(needed, low), high)
    p99 = grid.p99_at(index, load / max(replicas, 1))
    mix = _mix_one(spec, c, cached, spot, replicas, policy, auto.startup_seconds)
    cost = float(mix.hourly_cost[0])
    ok = bool(capacity > 0 and needed <= high and p99 <= slo and cost <= room + 1e-9)

    cache = _cache_decision(spec, rows, win, c, cached, hit, replicas, policy, obs)
    n_feasible = int(rows.feasible.sum())
    head = (
        f"chose {c.itype.name} ({c.itype.pool}, {'spot mix' if spot else 'on-demand'}) with "
        f"variant {c.variant}: ${cost:.3f}/h for {_plural(replicas, 'replica')} at "
        f"{demand:.1f} req/s, "
        + (
            f"cheapest of {n_feasible} configurations meeting the SLO"
            if n_feasible > 1
            else "the only configuration meeting the SLO"
        )
        if ok
        else f"no configuration meets p99 <= {slo:g} ms at {demand:.1f} req/s within the "
        f"bounds; least bad: {c.itype.name} with variant {c.variant}"
    )
    out = [head, *reasons]
    if not ok:
        out.append(_infeasible_reason(spec, c, capacity, needed, high, p99, cost, room))
    if fc.method == "constant":
        out.append(f"demand: {demand:.1f} req/s given, no history to forecast from")
    else:
        out.append(
            f"demand: {fc.method} forecast, peak {fc.peak_mean:.1f} req/s "
            f"(p{round(100 * fc.quantile)} {fc.peak_upper:.1f}) over the next hour"
        )
    b, d = int(grid.batches[bj]), float(grid.delays_ms[dk])
    if capacity > 0:
        out.append(_latency_reason(spec, policy, traffic, capacity, target, b, d))
    if spec.slo.min_accuracy is not None:
        acc = next((v.accuracy for v in spec.variants or [] if v.name == c.variant), None)
        out.append(f"accuracy: {c.variant} ({acc}) meets minAccuracy {spec.slo.min_accuracy:g}")
    out += _bound_reasons(rows, order, win, cands, grid, spec, room)
    if spot:
        out.append(
            f"spot: {int(mix.on_demand_replicas[0])} on-demand + "
            f"{_plural(int(mix.spot_replicas[0]), 'spot replica')} "
            f"(policy maxPercent {policy.spot.max_percent}%, on-demand base "
            f"{policy.spot.on_demand_base_replicas}); interruption risk "
            f"${float(mix.interruption_cost[0]):.4f}/h"
        )
    if math.isfinite(room) and ok:
        out.append(f"budget: ${cost:.3f}/h within ${room:.3f}/h")
    if traffic.samples:
        out.append(f"autoscaling: {traffic.describe()}")
    if hpa is not None:
        out += hpa.reasons
        if hpa.evaluation is not None:
            out.append(
                f"autoscaling: replay of {traffic.samples} intervals: "
                f"{100 * hpa.evaluation.slo_violation_fraction:.1f}% over capacity, "
                f"${hpa.evaluation.hourly_cost:.3f}/h on average"
            )
    out.append(_cache_reason(spec, cache))

    metric_type = auto.metric
    value = _metric_target(metric_type, target, grid, index, slo)
    decision = Decision(
        slo_feasible=ok,
        instance_type=c.itype.name,
        pool=c.itype.pool,
        capacity_type="spot" if spot else "on-demand",
        variant=c.variant,
        min_replicas=low,
        max_replicas=high,
        scaling_metric=auto.metric_name,
        scaling_metric_type=metric_type,
        target_rps_per_replica=target,
        target_value=value,
        behavior=hpa.behavior
        if hpa
        else autoscaling.behavior_for(traffic.kind, auto.startup_seconds, 300),
        max_batch_size=b,
        max_queue_delay_ms=d if b > 1 else 0.0,
        cache=cache,
        p99_latency_ms=p99,
        capacity_per_replica_rps=capacity,
        hourly_cost=cost,
        replicas=replicas,
        demand_rps=demand,
        utilisation=min(load / max(replicas, 1) / limit, 1.0) if limit > 0 else 0.0,
        on_demand_replicas=int(mix.on_demand_replicas[0]),
        spot_replicas=int(mix.spot_replicas[0]),
        interruption_cost_hourly=float(mix.interruption_cost[0]),
        traffic=traffic.kind,
        forecast_method=fc.method,
        reasons=tuple(out),
        alternatives=_alternatives(rows, win, cands, grid, spec, room, rejected),
        corrections=dict(corrections),
    )
    return decision


def _latency_reason(
    spec: ModelServingSpec,
    policy: ServingPolicySpec,
    traffic: TrafficProfile,
    capacity: float,
    target: float,
    batch: int,
    delay: float,
) -> str:
    """What one replica serves and which margin set the HPA target."""
    fraction = target / capacity
    policy_margin = 1 - autoscaling.POLICY_HEADROOM.get(policy.aggressiveness, 0.2)
    ramp_margin = autoscaling.target_fraction("Aggressive", traffic.ramp_per_startup)
    if abs(fraction - policy_margin) < 1e-9:
        binding = f"policy headroom ({policy.aggressiveness})"
    elif abs(fraction - ramp_margin) < 1e-9:
        binding = f"demand growth during a {spec.autoscaling.startup_seconds} s pod start-up"
    else:
        binding = "a replay of the history"
    return (
        f"latency: one replica serves {capacity:.1f} req/s at p99 <= "
        f"{spec.slo.latency_p99_ms:g} ms with maxBatchSize {batch}, maxQueueDelay {delay:g} ms; "
        f"HPA target {target:.1f} req/s ({100 * fraction:.0f}% of capacity, bound by {binding})"
    )


def _metric_target(
    metric_type: str,
    target_rps: float,
    grid: perfgrid.PerfGrid,
    index: tuple[int, int, int],
    slo_ms: float,
) -> float:
    """The HPA target in the scaling metric's unit.

    Concurrency: Little's law, target rate x mean latency, the mean estimated as the
    midpoint of a lone request's latency and the p99 at the target.  CPU utilisation:
    the target's share of the stability limit, in percent.
    """
    if metric_type == "Concurrency":
        mean_ms = 0.5 * (float(grid.zero_load_p99_ms[index]) + grid.p99_at(index, target_rps))
        return target_rps * (mean_ms if math.isfinite(mean_ms) else slo_ms) / 1000.0
    if metric_type == "CPUUtilization":
        limit = float(grid.limit_rps[index[0], index[1]])
        return float(round(100.0 * target_rps / limit)) if limit > 0 else 0.0
    return target_rps


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _infeasible_reason(
    spec: ModelServingSpec,
    c: _Candidate,
    capacity: float,
    needed: int,
    high: int,
    p99: float,
    cost: float,
    room: float,
) -> str:
    """What bound the least-bad configuration."""
    slo = spec.slo.latency_p99_ms
    if capacity <= 0:
        return f"latency: {c.itype.name}/{c.variant} cannot meet p99 <= {slo:g} ms at any load"
    if needed > high:
        bound = "budget" if high < spec.autoscaling.max_replicas else "autoscaling.maxReplicas"
        return f"replicas: needs {needed} at the HPA target, {bound} allows {high}"
    if cost > room:
        return f"budget: ${cost:.3f}/h over ${room:.3f}/h"
    return f"latency: predicted p99 {p99:.1f} ms > SLO {slo:g} ms"


def _room(policy: ServingPolicySpec, obs: Observation) -> float:
    budget = policy.budgets.max_hourly_cost_per_model_serving
    room = math.inf if budget is None else budget
    ns_budget = policy.budgets.max_hourly_cost_per_namespace
    if ns_budget is not None:
        room = min(room, ns_budget - obs.namespace_spend_hourly)
    return room


def _bound_reasons(
    rows: _Rows,
    order: IntArray,
    win: int,
    cands: Sequence[_Candidate],
    grid: perfgrid.PerfGrid,
    spec: ModelServingSpec,
    room: float,
) -> list[str]:
    """What kept the cheapest rows out: latency, replica bounds or budget."""
    out: list[str] = []
    seen: set[str] = set()
    for r in order:
        if r == win or rows.rank_cost[r] >= rows.rank_cost[win] or len(out) >= 3:
            break
        if rows.feasible[r]:
            continue
        why = _rejection(rows, int(r), grid, spec, None, room)
        c = cands[int(rows.cand[r])]
        label = f"{c.itype.name}/{c.variant}"
        if label in seen:
            continue
        seen.add(label)
        kind = why.split(":", 1)[0]
        out.append(f"{kind}: cheaper {label} (${float(rows.cost[r]):.3f}/h) rejected, {why}")
    return out


def _cache_decision(
    spec: ModelServingSpec,
    rows: _Rows,
    win: int,
    cand: _Candidate,
    cached: bool,
    hit: float,
    replicas: int,
    policy: ServingPolicySpec,
    obs: Observation,
) -> CacheDecision:
    all_hit = _hit_rate(spec, obs)
    size = _cache_size(spec, obs)
    share = size / (cand.itype.memory_gi_b * MIB_PER_GIB) * cand.itype.on_demand_hourly
    # the same configuration with the cache flipped, to report what it saves
    same = (rows.cand == rows.cand[win]) & (rows.spot == rows.spot[win])
    other = np.flatnonzero(same & (rows.cache_on != cached))
    saving = 0.0
    if other.size:
        off, on = (other[0], win) if cached else (win, other[0])
        saving = float(rows.cost[off] - rows.cost[on])
    if not cached:
        return CacheDecision(False, None, all_hit, 0.0, max(saving, 0.0), share * replicas)
    return CacheDecision(True, size, hit, hit, max(saving, 0.0), share * replicas)


def _cache_reason(spec: ModelServingSpec, cache: CacheDecision) -> str:
    mode = spec.caching.mode
    if mode == "Off":
        return "cache: off (caching.mode Off)"
    if mode == "On":
        return f"cache: on, {cache.size_mib} MiB per replica (caching.mode On)"
    if cache.enabled:
        return (
            f"cache: on, {cache.size_mib} MiB per replica: hit rate {100 * cache.hit_rate:.0f}% "
            f"saves ${cache.hourly_saving:.3f}/h of replicas for ${cache.hourly_cost:.3f}/h of "
            "memory"
        )
    if cache.hit_rate <= 0:
        return "cache: off, no hit rate observed or expected"
    return (
        f"cache: off, a hit rate of {100 * cache.hit_rate:.0f}% saves less than its memory "
        f"costs (${cache.hourly_cost:.3f}/h)"
    )
