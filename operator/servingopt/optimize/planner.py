"""``plan()``: the cheapest configuration that meets the SLO, with its reasons.

A pure function of the ModelServing spec, the instance catalog, the serving policy
and an :class:`Observation`.  :func:`plan` reads as its steps (see
``docs/decision-engine.md``):

1. demand: forecast from the history (or the given rate), traffic class and bursts
   within the interval (:func:`forecast_demand`, :mod:`~servingopt.optimize.bursts`);
2. candidates: allowed (pool, instance type) x variants meeting the accuracy floor,
   with a latency profile, whose model fits the GPU (or pod) memory and whose pod
   fits the node; profiles corrected by what was learned from live metrics
   (:mod:`~servingopt.optimize.candidates`);
3. performance: capacity at the SLO of every (candidate, B, D) at once
   (:func:`~servingopt.optimize.candidates.performance_grid`);
4. ranking: per candidate its HPA target margin (the policy's headroom, the model's
   error, bursts, and the demand's growth while a replica starts on that pool:
   :func:`start_ramps`), its best (B, D), replicas at the HPA target, nodes and
   price per capacity type (on-demand, or the policy's spot mix), with and without
   the response cache; the cheapest row meeting latency, replica bounds and budgets
   wins, else the least bad one, flagged infeasible
   (:mod:`~servingopt.optimize.ranking`, :mod:`~servingopt.optimize.cache`);
5. autoscaling: target, min/max replicas and HPA behavior for the winner, replayed
   over the history; when the replay picks another target margin, the rows are
   ranked again with it (:func:`_rank_again_with_replayed_margin`);
6. the Decision, with its reasons and alternatives (:mod:`~servingopt.optimize.explain`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from servingopt.api import InstanceCatalog, ModelServingSpec, ServingPolicySpec
from servingopt.optimize import autoscaling, bursts, cache, explain, perfgrid
from servingopt.optimize.autoscaling import AutoscalingPlan
from servingopt.optimize.candidates import (
    batch_candidates,
    capacity_types,
    delay_candidates,
    find_candidates,
    performance_grid,
)
from servingopt.optimize.decision import CacheDecision, Decision
from servingopt.optimize.forecast import constant, forecast, sampling_step
from servingopt.optimize.plantypes import (
    INF_REPLICAS,
    Candidate,
    CandidateSet,
    Choice,
    Demand,
    Rows,
    Sizing,
)
from servingopt.optimize.ranking import Ranker, budget_room, cost_of
from servingopt.optimize.traffic import UNKNOWN, classify, ramp_growth
from servingopt.values import FloatArray, Observation

# batch_candidates and delay_candidates stay importable from here (bench/bench_plan.py).
__all__ = ["batch_candidates", "delay_candidates", "forecast_demand", "plan"]

#: Margins closer than this are the same margin (no second ranking).
_SAME_MARGIN = 1e-9


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
    factors = bursts.minute_bursts(spec, obs)  # read by the demand's sizing and by learning
    demand = forecast_demand(spec, obs, horizon_s, factors)
    if demand is None:
        return empty_decision(spec, ["no demand: give a request-rate history or a demand rate"])
    allowed_capacity = capacity_types(spec, policy)
    if not allowed_capacity:
        why = "policy: no capacity type allowed by both candidates and policy"
        return empty_decision(spec, [why], **demand.decision_fields())
    found = find_candidates(spec, catalog, policy, obs, factors)
    if not found.candidates:
        return _unranked(spec, demand, found, _why_no_candidate(found))
    grid = performance_grid(spec, found.candidates)
    demands = _sizing_demands(spec, policy, obs, demand)
    ranker = Ranker(spec, policy, obs, found.candidates, grid, demands, allowed_capacity)
    ramps = start_ramps(spec, obs, demand, found.candidates)
    distinct, which = np.unique(ramps, return_inverse=True)  # a few start times
    rule_margins = np.array(
        [
            autoscaling.target_fraction(
                policy.aggressiveness, float(g), demand.traffic.burst_factor, found.model_error
            )
            for g in distinct
        ]
    )[which]
    rows = ranker.rows(rule_margins)
    if rows.cand.size == 0:
        why = "no candidate instance type offers an allowed capacity type"
        return _unranked(spec, demand, found, why)
    choice = ranker.choose(rows, demand.rps)
    demand = _with_ramp(demand, float(ramps[choice.index[0]]))
    hpa = _tune_hpa(spec, policy, obs, demand, choice, evaluator, model_error=found.model_error)
    rule_margin = float(rule_margins[choice.index[0]])
    if hpa is not None and abs(hpa.target_fraction - rule_margin) > _SAME_MARGIN:
        rows, choice, hpa = _rank_again_with_replayed_margin(
            ranker,
            demand,
            evaluator,
            rule_margins * (hpa.target_fraction / rule_margin),
            ramps,
            (choice, hpa),
        )
    return _decision(spec, policy, obs, demand, found, grid, rows, choice, hpa)


def start_ramps(
    spec: ModelServingSpec, obs: Observation, demand: Demand, candidates: Sequence[Candidate]
) -> FloatArray:
    """Each candidate's ramp: the 99th-percentile growth of demand over the time a new
    replica takes to serve there (its node's provisioning plus the pod's start-up), so
    a pool that is slow to start keeps more standing headroom for a rising load."""
    startup = spec.autoscaling.startup_seconds
    if not obs.has_history:
        return np.full(len(candidates), demand.traffic.ramp_per_startup)
    step = sampling_step(obs.timestamps_s)
    y = np.nan_to_num(obs.requests_per_second, nan=0.0).clip(min=0.0)
    by_start: dict[int, float] = {}
    out = np.empty(len(candidates))
    for i, cand in enumerate(candidates):
        start = startup + cand.itype.provisioning_seconds
        if start not in by_start:
            by_start[start] = ramp_growth(y, step, float(start))
        out[i] = by_start[start]
    return out


def _with_ramp(demand: Demand, ramp: float) -> Demand:
    """The demand with the chosen candidate's ramp (its start time, not the pod's alone)."""
    if not math.isfinite(ramp) or demand.traffic.samples == 0:
        return demand
    return replace(demand, traffic=replace(demand.traffic, ramp_per_startup=ramp))


def forecast_demand(
    spec: ModelServingSpec,
    obs: Observation,
    horizon_s: float,
    burst_factors: FloatArray | None = None,
) -> Demand | None:
    """The demand to plan for: forecast from the history, else the given rate (None:
    neither, or a given rate that is not a number >= 0). ``burst_factors``: the
    history's, when the caller has them (else read from ``obs``)."""
    if obs.has_history:
        fc = forecast(obs.timestamps_s, obs.requests_per_second, horizon_s)
        startup = spec.autoscaling.startup_seconds
        traffic = classify(obs.timestamps_s, obs.requests_per_second, startup)
        if burst_factors is None:
            burst_factors = bursts.minute_bursts(spec, obs)
        burst = bursts.sizing_factor(obs.timestamps_s, burst_factors)
        traffic = replace(traffic, burst_factor=burst)
    elif obs.demand_rps is not None and math.isfinite(obs.demand_rps) and obs.demand_rps >= 0:
        fc, traffic = constant(obs.demand_rps, horizon_s), UNKNOWN
    else:
        return None
    return Demand(fc, traffic, obs.demand_rps if obs.demand_rps is not None else fc.peak_mean)


def _sizing_demands(
    spec: ModelServingSpec, policy: ServingPolicySpec, obs: Observation, demand: Demand
) -> tuple[float, float]:
    """(the demand to size replicas for, the forecast's upper band).

    The minReplicas floors (spiky traffic's p75, the predictive minimum ahead of a
    daily peak) are capacity the HPA will keep: sizing for the larger of them and
    the demand keeps a type that is cheap at today's trough but dear at the floor
    from winning.  The upper band tells moves that pay only below it (ranking).
    """
    lead_s = spec.autoscaling.startup_seconds + policy.replan_interval_seconds
    floor_rps, _ = autoscaling.floor_demand(
        demand.traffic, demand.forecast, lead_s, obs.requests_per_second
    )
    size_for = max(demand.rps, floor_rps) * startup_prior(obs)
    return size_for, max(demand.forecast.peak_upper, size_for)


#: A workload just observed may burst as much as the planner ever sizes for; the prior
#: holds until the history has this many intervals (each with its own peak rate and
#: growth to judge by), then gives way at once: a prior that faded interval by
#: interval would move the recommendation, and the status, at every re-plan.
PRIOR_FACTOR = bursts.MAX_SIZED_FACTOR
PRIOR_INTERVALS = 20


def startup_prior(obs: Observation) -> float:
    """How much more than the demand to size for, given how little history there is.

    1 without any history: a plan for a declared demand (``servingopt plan --rps``)
    takes the figure as stated."""
    intervals = obs.requests_per_second.size
    return PRIOR_FACTOR if 0 < intervals < PRIOR_INTERVALS else 1.0


def _tune_hpa(
    spec: ModelServingSpec,
    policy: ServingPolicySpec,
    obs: Observation,
    demand: Demand,
    choice: Choice,
    evaluator: autoscaling.Evaluator | None,
    margins: Sequence[float] | None = None,
    model_error: float | None = None,
) -> AutoscalingPlan | None:
    """Target, bounds and behavior of the chosen configuration's HPA, replaying
    ``margins`` (default: the rule's and its neighbours) over the history.  None for
    a least-bad configuration without capacity at the SLO: there is nothing to tune."""
    if choice.capacity <= 0:
        return None
    auto = spec.autoscaling
    return autoscaling.tune(
        capacity_rps=choice.capacity,
        aggressiveness=policy.aggressiveness,
        traffic=demand.traffic,
        forecast=demand.forecast,
        spec_min=auto.min_replicas,
        spec_max=auto.max_replicas,
        budget_max_replicas=choice.budget_replicas,
        startup_s=auto.startup_seconds,
        replan_interval_s=policy.replan_interval_seconds,
        hourly_cost_per_replica=choice.hourly_cost_per_replica,
        timestamps_s=obs.timestamps_s,
        history_rps=obs.requests_per_second,
        evaluator=evaluator,
        fractions=margins,
        prior_rps=demand.rps * startup_prior(obs) if startup_prior(obs) > 1.0 else 0.0,
        model_error=model_error,
        scale_down_window_s=auto.scale_down_stabilization_seconds,
    )


def _rank_again_with_replayed_margin(
    ranker: Ranker,
    demand: Demand,
    evaluator: autoscaling.Evaluator | None,
    margins: FloatArray,
    ramps: FloatArray,
    tuned: tuple[Choice, AutoscalingPlan],
) -> tuple[Rows, Choice, AutoscalingPlan | None]:
    """Rank, choose and tune again with the HPA target margin the replay picked.

    Why: the rows were ranked with the rule's margin (target = capacity x margin sets
    every row's replicas, hence its $/h).  When the replay of the history keeps the
    SLO better, or as well for less, with another margin, the HPA gets that margin,
    and the replicas and $/h of every row change with it, possibly which row is
    cheapest.  Ranking again makes the instance choice, the replicas and the $/h all
    use the margin the HPA will get.  Every candidate's margin is scaled alike (each
    keeps its own start time's ramp); the new winner is tuned with its margin only,
    unless it is the row already ``tuned`` at that margin (the same HPA again).
    """
    rows = ranker.rows(margins)
    choice = ranker.choose(rows, demand.rps)
    c = choice.index[0]
    before, before_hpa = tuned
    if _same_row(choice, before) and abs(margins[c] - before_hpa.target_fraction) < 1e-12:
        return rows, choice, before_hpa
    demand = _with_ramp(demand, float(ramps[c]))
    hpa = _tune_hpa(
        ranker.spec,
        ranker.policy,
        ranker.obs,
        demand,
        choice,
        evaluator,
        margins=[float(margins[c])],
    )
    return rows, choice, hpa


def _same_row(a: Choice, b: Choice) -> bool:
    """Whether two choices are one configuration with the same inputs to tuning."""
    return (
        a.index == b.index
        and a.cached == b.cached
        and a.spot == b.spot
        and a.capacity == b.capacity
        and a.hourly_cost_per_replica == b.hourly_cost_per_replica
        and a.budget_replicas == b.budget_replicas
    )


def _size(
    spec: ModelServingSpec,
    policy: ServingPolicySpec,
    grid: perfgrid.PerfGrid,
    choice: Choice,
    hpa: AutoscalingPlan | None,
    room: float,
) -> Sizing:
    """The chosen configuration's replicas at the demand, what they cost and whether
    they meet the SLO, the replica bounds and the budget."""
    auto = spec.autoscaling
    if hpa is not None:
        target, low, high = hpa.target_rps, hpa.min_replicas, hpa.max_replicas
    else:  # least bad with no SLO capacity: half the stability limit per replica
        target = 0.5 * choice.limit
        ceiling = auto.max_replicas if choice.budget_replicas is None else choice.budget_replicas
        high = max(min(auto.max_replicas, ceiling), 1)
        low = min(auto.min_replicas, high)
    needed = math.ceil(choice.load / target - 1e-9) if target > 0 else INF_REPLICAS
    replicas = min(max(needed, low), high)
    p99 = grid.p99_at(choice.index, choice.load / max(replicas, 1))
    mix = cost_of(spec, policy, choice.candidate, choice.cached, choice.spot, replicas)
    cost = float(mix.hourly_cost[0])
    ok = bool(
        choice.capacity > 0
        and needed <= high
        and p99 <= spec.slo.latency_p99_ms
        and cost <= room + 1e-9
    )
    return Sizing(target, low, high, needed, replicas, p99, mix, cost, ok)


def _running_cost(
    spec: ModelServingSpec, policy: ServingPolicySpec, obs: Observation, found: CandidateSet
) -> float | None:
    """What the running configuration costs at its replicas, priced as a plan is."""
    now = obs.current
    if not now.instance_type or not now.replicas:
        return None
    for cand in found.candidates:
        if cand.itype.name == now.instance_type and (now.variant in (None, cand.variant)):
            spot = now.capacity_type == "spot"
            cached = bool(now.cache_enabled)
            return float(cost_of(spec, policy, cand, cached, spot, now.replicas).hourly_cost[0])
    return None


def _decision(
    spec: ModelServingSpec,
    policy: ServingPolicySpec,
    obs: Observation,
    demand: Demand,
    found: CandidateSet,
    grid: perfgrid.PerfGrid,
    rows: Rows,
    choice: Choice,
    hpa: AutoscalingPlan | None,
) -> Decision:
    """The Decision for the chosen configuration, with its reasons and alternatives."""
    auto = spec.autoscaling
    room = budget_room(policy, obs)
    sizing = _size(spec, policy, grid, choice, hpa, room)
    c = choice.candidate
    cache_decision = cache.decision(
        spec, obs, rows, choice.row, c, choice.hit_rate, sizing.replicas
    )
    reasons = explain.decision_reasons(
        spec, policy, demand, found.reasons, found.candidates, grid, rows, choice, sizing, hpa, room
    )
    reasons.append(cache.reason(spec, cache_decision))
    _, bj, dk = choice.index
    batch, delay = int(grid.batches[bj]), float(grid.delays_ms[dk])
    limit = choice.limit
    return Decision(
        slo_feasible=sizing.slo_feasible,
        instance_type=c.itype.name,
        pool=c.itype.pool,
        capacity_type="spot" if choice.spot else "on-demand",
        variant=c.variant,
        min_replicas=sizing.min_replicas,
        max_replicas=sizing.max_replicas,
        scaling_metric=auto.pods_metric_name,
        scaling_metric_type=auto.metric,
        target_rps_per_replica=sizing.target_rps,
        target_value=hpa_target_value(
            auto.metric, sizing.target_rps, grid, choice.index, spec.slo.latency_p99_ms
        ),
        behavior=hpa.behavior
        if hpa is not None
        else autoscaling.behavior_for(demand.traffic.kind, auto.startup_seconds, 300),
        max_batch_size=batch,
        max_queue_delay_ms=delay if batch > 1 else 0.0,
        cache=cache_decision,
        p99_latency_ms=sizing.p99_ms,
        capacity_per_replica_rps=choice.capacity,
        hourly_cost=sizing.hourly_cost,
        running_hourly_cost=_running_cost(spec, policy, obs, found),
        replicas=sizing.replicas,
        demand_rps=demand.rps,
        utilisation=min(choice.load / max(sizing.replicas, 1) / limit, 1.0) if limit > 0 else 0.0,
        on_demand_replicas=int(sizing.mix.on_demand_replicas[0]),
        spot_replicas=int(sizing.mix.spot_replicas[0]),
        interruption_cost_hourly=float(sizing.mix.interruption_cost[0]),
        traffic=demand.traffic.kind,
        forecast_method=demand.forecast.method,
        reasons=tuple(reasons),
        alternatives=explain.alternatives(
            rows, choice.row, found.candidates, grid, spec, room, found.rejected
        ),
        corrections=dict(found.corrections),
        model_error=found.model_error,
    )


def hpa_target_value(
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


def _why_no_candidate(found: CandidateSet) -> str:
    """The (at most three) reasons the pairs were rejected."""
    rejected = "; ".join(sorted({a.rejected for a in found.rejected})[:3])
    return "no candidate configuration: " + (rejected or "no instance type allowed")


def _unranked(spec: ModelServingSpec, demand: Demand, found: CandidateSet, why: str) -> Decision:
    """No configuration to rank: what was found on the way, then why."""
    return empty_decision(
        spec,
        [*found.reasons, why],
        alternatives=tuple(found.rejected[: explain.MAX_ALTERNATIVES]),
        corrections=found.corrections,
        **demand.decision_fields(),
    )


def empty_decision(spec: ModelServingSpec, reasons: Sequence[str], **kw: object) -> Decision:
    """A Decision without a configuration (``slo_feasible=False``): the spec's replica
    bounds, no instance, ``reasons`` saying why; ``kw`` overrides fields."""
    auto = spec.autoscaling
    fields: dict[str, object] = dict(
        slo_feasible=False,
        instance_type=None,
        pool=None,
        capacity_type=None,
        variant=None,
        min_replicas=auto.min_replicas,
        max_replicas=auto.max_replicas,
        scaling_metric=auto.pods_metric_name,
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
