"""Why the plan is what it is: a Decision's reasons and its alternatives.

The reasons read top-down: the choice and its cost (or what bound the least-bad
one), the notes found on the way (policy, accuracy, learning), the demand, the latency
bound and which margin set the HPA target, accuracy, the cheaper rows that were
rejected and why, the spot split, the budget, autoscaling, the cache.  Each
alternative says why it was not chosen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from servingopt.api import ModelServingSpec, ServingPolicySpec
from servingopt.optimize import autoscaling, perfgrid
from servingopt.optimize.autoscaling import AutoscalingPlan
from servingopt.optimize.decision import Alternative
from servingopt.optimize.plantypes import Candidate, Choice, Demand, IntArray, Rows, Sizing
from servingopt.optimize.traffic import TrafficProfile

#: Alternatives a Decision lists: at most 5 feasible ones, then infeasible ones, then
#: pairs rejected before ranking.
MAX_ALTERNATIVES = 8
MAX_FEASIBLE_ALTERNATIVES = 5
#: Cheaper rows whose rejection the reasons explain.
MAX_BOUND_REASONS = 3


def decision_reasons(
    spec: ModelServingSpec,
    policy: ServingPolicySpec,
    demand: Demand,
    notes: Sequence[str],
    candidates: Sequence[Candidate],
    grid: perfgrid.PerfGrid,
    rows: Rows,
    choice: Choice,
    sizing: Sizing,
    hpa: AutoscalingPlan | None,
    room: float,
) -> list[str]:
    """Every reason but the cache's, in the order a reader wants them.

    ``notes``: what finding the candidates said (policy, accuracy, learning).
    """
    fc, traffic = demand.forecast, demand.traffic
    out = [_headline(spec, demand, rows, choice, sizing), *notes]
    if not sizing.slo_feasible:
        out.append(_infeasible_reason(spec, choice, sizing, room))
    if fc.method == "constant":
        out.append(f"demand: {demand.rps:.1f} req/s given, no history to forecast from")
    else:
        out.append(
            f"demand: {fc.method} forecast, peak {fc.peak_mean:.1f} req/s "
            f"(p{round(100 * fc.quantile)} {fc.peak_upper:.1f}) over the next hour"
        )
    if choice.capacity > 0:
        _, bj, dk = choice.index
        batch, delay = int(grid.batches[bj]), float(grid.delays_ms[dk])
        out.append(
            _latency_reason(spec, policy, traffic, choice.capacity, sizing.target_rps, batch, delay)
        )
    if spec.slo.min_accuracy is not None:
        variant = choice.candidate.variant
        acc = next((v.accuracy for v in spec.variants or [] if v.name == variant), None)
        out.append(f"accuracy: {variant} ({acc}) meets minAccuracy {spec.slo.min_accuracy:g}")
    out += bound_reasons(rows, choice.order, choice.row, candidates, grid, spec, room)
    if choice.spot:
        out.append(_spot_reason(policy, sizing))
    if math.isfinite(room) and sizing.slo_feasible:
        out.append(f"budget: ${sizing.hourly_cost:.3f}/h within ${room:.3f}/h")
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
    return out


def _headline(
    spec: ModelServingSpec, demand: Demand, rows: Rows, choice: Choice, sizing: Sizing
) -> str:
    """The choice and what it costs; or that nothing meets the SLO, and the least bad."""
    c = choice.candidate
    if not sizing.slo_feasible:
        return (
            f"no configuration meets p99 <= {spec.slo.latency_p99_ms:g} ms at "
            f"{demand.rps:.1f} req/s within the bounds; least bad: {c.itype.name} with "
            f"variant {c.variant}"
        )
    n_feasible = int(rows.feasible.sum())
    among = (
        f"cheapest of {n_feasible} configurations meeting the SLO"
        if n_feasible > 1
        else "the only configuration meeting the SLO"
    )
    return (
        f"chose {c.itype.name} ({c.itype.pool}, {'spot mix' if choice.spot else 'on-demand'}) "
        f"with variant {c.variant}: ${sizing.hourly_cost:.3f}/h for "
        f"{plural(sizing.replicas, 'replica')} at {demand.rps:.1f} req/s, {among}"
    )


def _infeasible_reason(spec: ModelServingSpec, choice: Choice, sizing: Sizing, room: float) -> str:
    """What bound the least-bad configuration."""
    slo = spec.slo.latency_p99_ms
    c = choice.candidate
    if choice.capacity <= 0:
        return f"latency: {c.itype.name}/{c.variant} cannot meet p99 <= {slo:g} ms at any load"
    if sizing.needed > sizing.max_replicas:
        bound = (
            "budget"
            if sizing.max_replicas < spec.autoscaling.max_replicas
            else "autoscaling.maxReplicas"
        )
        return (
            f"replicas: needs {sizing.needed} at the HPA target, {bound} allows "
            f"{sizing.max_replicas}"
        )
    if sizing.hourly_cost > room:
        return f"budget: ${sizing.hourly_cost:.3f}/h over ${room:.3f}/h"
    return f"latency: predicted p99 {sizing.p99_ms:.1f} ms > SLO {slo:g} ms"


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
    burst_margin = 1.0 / max(traffic.burst_factor, 1.0)
    if abs(fraction - policy_margin) < 1e-9:
        binding = f"policy headroom ({policy.aggressiveness})"
    elif abs(fraction - ramp_margin) < 1e-9:
        binding = (
            f"demand growth ({100 * traffic.ramp_per_startup:.0f}%) while a new replica "
            f"starts: node provisioning + {spec.autoscaling.startup_seconds} s pod start-up"
        )
    elif abs(fraction - burst_margin) < 1e-9:
        binding = f"bursts within the minute (x{traffic.burst_factor:.2f})"
    else:
        binding = "a replay of the history"
    return (
        f"latency: one replica serves {capacity:.1f} req/s at p99 <= "
        f"{spec.slo.latency_p99_ms:g} ms with maxBatchSize {batch}, maxQueueDelay {delay:g} ms; "
        f"HPA target {target:.1f} req/s ({100 * fraction:.0f}% of capacity, bound by {binding})"
    )


def _spot_reason(policy: ServingPolicySpec, sizing: Sizing) -> str:
    mix = sizing.mix
    return (
        f"spot: {int(mix.on_demand_replicas[0])} on-demand + "
        f"{plural(int(mix.spot_replicas[0]), 'spot replica')} "
        f"(policy maxPercent {policy.spot.max_percent}%, on-demand base "
        f"{policy.spot.on_demand_base_replicas}); interruption risk "
        f"${float(mix.interruption_cost[0]):.4f}/h"
    )


def bound_reasons(
    rows: Rows,
    order: IntArray,
    win: int,
    cands: Sequence[Candidate],
    grid: perfgrid.PerfGrid,
    spec: ModelServingSpec,
    room: float,
) -> list[str]:
    """What kept the cheapest rows out: latency, replica bounds or budget."""
    out: list[str] = []
    seen: set[str] = set()
    for r in order:
        if r == win or rows.rank_cost[r] >= rows.rank_cost[win] or len(out) >= MAX_BOUND_REASONS:
            break
        if rows.feasible[r]:
            continue
        why = rejection(rows, int(r), grid, spec, None, room)
        c = cands[int(rows.cand[r])]
        label = f"{c.itype.name}/{c.variant}"
        if label in seen:
            continue
        seen.add(label)
        kind = why.split(":", 1)[0]
        out.append(f"{kind}: cheaper {label} (${float(rows.cost[r]):.3f}/h) rejected, {why}")
    return out


def alternatives(
    rows: Rows,
    win: int,
    cands: Sequence[Candidate],
    grid: perfgrid.PerfGrid,
    spec: ModelServingSpec,
    room: float,
    rejected: Sequence[Alternative],
) -> tuple[Alternative, ...]:
    """The best row of each other (candidate, capacity type), feasible ones first,
    then the pairs rejected before ranking; each says why it was not chosen."""
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
        if rows.feasible[r] and len(feasible) >= MAX_FEASIBLE_ALTERNATIVES:
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
            rejection(rows, int(r), grid, spec, best_cost, room),
        )
        (feasible if rows.feasible[r] else infeasible).append(alt)
    out = feasible[:MAX_FEASIBLE_ALTERNATIVES]
    out += infeasible[: MAX_ALTERNATIVES - len(out)]
    out += list(rejected[: max(0, MAX_ALTERNATIVES - len(out))])
    return tuple(out)


def rejection(
    rows: Rows,
    r: int,
    grid: perfgrid.PerfGrid,
    spec: ModelServingSpec,
    best_cost: float | None,
    room: float,
) -> str:
    """Why row ``r`` was not chosen (``best_cost``: the winner's, when feasible)."""
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


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
