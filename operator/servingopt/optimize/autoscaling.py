"""Autoscaling tuning: the HPA v2 target, replica bounds and ``behavior``.

* **Target per replica**: the SLO capacity of one replica times the smallest of its
  margins: the policy's utilisation headroom (Conservative 35 %, Balanced 20 %,
  Aggressive 10 %); the model-error margin ``1 / (1 + e)``, where ``e`` is how wrong
  the model has been so far (a high quantile of the relative capacity error that
  learning measured, :mod:`~servingopt.optimize.learning`; none without evidence), so
  a capacity the live metrics showed optimistic is not used up to the policy's
  fraction; the ramp margin ``1 / ((1 + g) * 1.1)``, where ``g`` is the
  99th-percentile growth of demand over one pod start-up (new replicas serve only
  after it) and 1.1 is the HPA's default 10 % tolerance (it does not act below it);
  and the burst margin.
* **minReplicas**: the user's floor; for spiky traffic enough replicas for the
  75th-percentile demand (a spike starts from capacity, not from zero); with a daily
  pattern, enough for the forecast's upper band over the next start-up plus re-plan
  interval (a *predictive minimum*: the floor rises before the peak arrives).
* **maxReplicas**: the user's bound, or fewer when the budget affords fewer replicas of
  the configuration (never the forecast: a surge nobody forecast is what the HPA is for,
  and only the bound and the budget say how far it may go).
* **behavior**: chosen by traffic class (stabilisation windows and rate policies).

Candidates (target margin x scale-down window) are compared by an *evaluator* that
replays the recent history: :func:`replay_with_model` (below, vectorised) by
default; the simulator (``servingopt.simulate``) can be plugged in instead through
the ``evaluator`` parameter of :func:`servingopt.optimize.plan`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from servingopt.optimize.forecast import Forecast, quantile, sampling_step
from servingopt.optimize.traffic import TrafficKind, TrafficProfile

FloatArray = npt.NDArray[np.float64]

HPA_TOLERANCE = 0.1
POLICY_HEADROOM = {"Conservative": 0.35, "Balanced": 0.20, "Aggressive": 0.10}
MAX_RAMP = 1.0  # growth beyond 100 % per start-up is left to minReplicas
MAX_VIOLATION = 0.01  # an evaluated candidate may miss capacity in 1 % of intervals


def model_margin(model_error: float | None) -> float:
    """The share of the SLO capacity a model ``model_error`` wrong leaves usable:
    ``1 / (1 + e)`` (1 without evidence: the policy's headroom alone)."""
    if model_error is None or not math.isfinite(model_error) or model_error <= 0.0:
        return 1.0
    return 1.0 / (1.0 + model_error)


def target_fraction(
    aggressiveness: str, ramp: float, burst: float = 1.0, model_error: float | None = None
) -> float:
    """Fraction of the SLO capacity the HPA target may use (see module docs): the
    smallest of the policy's headroom, the model-error margin, the ramp margin and the
    burst margin ``1 / F`` (the minute's mean at the target leaves the burst peaks
    within the SLO capacity). The policy's headroom is the least kept: a model shown
    wrong by more than it keeps more."""
    policy = min(1.0 - POLICY_HEADROOM.get(aggressiveness, 0.20), model_margin(model_error))
    ramp_margin = 1.0 / ((1.0 + min(max(ramp, 0.0), MAX_RAMP)) * (1.0 + HPA_TOLERANCE))
    return min(policy, ramp_margin, 1.0 / max(burst, 1.0))


def _policies(kind: str, value: int, period: int) -> dict[str, Any]:
    return {"type": kind, "value": value, "periodSeconds": period}


def behavior_for(kind: TrafficKind, startup_s: int, scale_down_window_s: int) -> dict[str, Any]:
    """An HPA v2 ``behavior`` object for a traffic class."""
    if kind == "spiky":
        up = [_policies("Percent", 200, 15), _policies("Pods", 8, 15)]
        down = [_policies("Percent", 10, 60)]
    elif kind == "periodic":
        up = [_policies("Percent", 100, 30), _policies("Pods", 4, 30)]
        down = [_policies("Percent", 20, 60)]
    elif kind == "variable":
        up = [_policies("Percent", 100, 15), _policies("Pods", 4, 15)]
        down = [_policies("Percent", 20, 60)]
    else:  # steady or unknown
        up = [_policies("Percent", 100, 15), _policies("Pods", 4, 15)]
        down = [_policies("Percent", 10, 60)]
    return {
        "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": up},
        "scaleDown": {
            # never shorter than a start-up: scaling in must not undo a scale-up in flight
            "stabilizationWindowSeconds": max(scale_down_window_s, startup_s),
            "selectPolicy": "Max",
            "policies": down,
        },
    }


@dataclass(frozen=True)
class AutoscalingCandidate:
    """One HPA setting to evaluate, with what the evaluator needs to replay it."""

    target_rps: float
    min_replicas: int
    max_replicas: int
    behavior: dict[str, Any]
    capacity_rps: float  # per replica, at the SLO
    startup_seconds: int
    hourly_cost_per_replica: float
    timestamps_s: FloatArray = field(repr=False)
    requests_per_second: FloatArray = field(repr=False)
    step_s: float | None = None
    """Sampling interval of the history (None: the median of its differences)."""


@dataclass(frozen=True)
class Evaluation:
    """What replaying a candidate over the history predicts."""

    hourly_cost: float
    slo_violation_fraction: float  # of intervals where load per replica exceeds capacity


Evaluator = Callable[[AutoscalingCandidate], Evaluation]


def _sliding_max(x: FloatArray, window: int) -> FloatArray:
    """``max(x[i - window + 1 : i + 1])``, the series' first value standing in before it.

    Doubling: ``m_k[i]`` holds the maximum of ``k`` values ending at ``i``; two
    overlapping power-of-two spans then cover any window, O(n log window).
    """
    if window <= 1 or x.size == 0:
        return x
    padded = np.concatenate([np.full(window - 1, x[0]), x])
    span, spans = 1, padded
    while 2 * span <= window:
        spans = np.maximum(spans[:-span], spans[span:])
        span *= 2
    # spans[j] = max(padded[j : j + span]); window i starts at padded index i
    out: FloatArray = np.maximum(spans[: x.size], spans[window - span : window - span + x.size])
    return out


def replay_with_model(candidate: AutoscalingCandidate) -> Evaluation:
    """Replay the history through a simple HPA: desired = ceil(load / target).

    Scale-down waits for the stabilisation window (sliding maximum of the desired
    count); scale-up takes effect one start-up time later.  An interval violates the
    SLO when its load per ready replica exceeds the replica's SLO capacity.
    """
    y = candidate.requests_per_second
    if y.size == 0:
        return Evaluation(candidate.min_replicas * candidate.hourly_cost_per_replica, 0.0)
    step = candidate.step_s or sampling_step(candidate.timestamps_s)
    desired = np.clip(
        np.ceil(y / candidate.target_rps), candidate.min_replicas, candidate.max_replicas
    )
    window = candidate.behavior["scaleDown"]["stabilizationWindowSeconds"]
    recommended = _sliding_max(desired, max(1, round(window / step)))
    lag = max(0, math.ceil(candidate.startup_seconds / step))
    earlier = np.concatenate([np.full(lag, recommended[0]), recommended[: y.size - lag]])
    ready = np.minimum(recommended, earlier[: y.size])
    violations = float(np.mean(y / ready > candidate.capacity_rps))
    cost = float(ready.mean()) * candidate.hourly_cost_per_replica
    return Evaluation(cost, violations)


@dataclass(frozen=True)
class AutoscalingPlan:
    target_rps: float
    min_replicas: int
    max_replicas: int
    behavior: dict[str, Any]
    target_fraction: float
    evaluation: Evaluation | None
    reasons: tuple[str, ...]


def floor_demand(
    traffic: TrafficProfile, forecast: Forecast, lead_s: float, history: FloatArray
) -> tuple[float, str | None]:
    """Demand the minReplicas must cover whatever the HPA sees now, and why.

    Spiky traffic: the 75th-percentile demand (a spike starts from capacity, not from
    the trough).  A daily pattern: the forecast's upper band over ``lead_s`` (a
    predictive minimum, raised before the peak arrives).  Otherwise 0.
    """
    level, why = 0.0, None
    if traffic.kind == "spiky" and history.size:
        level = quantile(history, 0.75)
        why = f"spiky traffic, covers the p75 demand {level:.1f} req/s"
    if forecast.daily:
        ahead = forecast.upper_within(lead_s)
        if ahead > level:
            level = ahead
            why = (
                f"daily pattern, raised ahead of the predicted {ahead:.1f} req/s "
                f"within {lead_s / 60:.0f} min"
            )
    return level, why


def tune(
    *,
    capacity_rps: float,
    aggressiveness: str,
    traffic: TrafficProfile,
    forecast: Forecast,
    spec_min: int,
    spec_max: int,
    budget_max_replicas: int | None,
    startup_s: int,
    replan_interval_s: int,
    hourly_cost_per_replica: float,
    timestamps_s: FloatArray,
    history_rps: FloatArray,
    evaluator: Evaluator | None,
    fractions: Sequence[float] | None = None,
    prior_rps: float = 0.0,
    model_error: float | None = None,
    scale_down_window_s: int | None = None,
) -> AutoscalingPlan:
    """Choose target, bounds and behavior for one configuration.

    ``fractions`` fixes the target margins to try (default: the rule's margin, and
    x0.85 / x1.1 of it when an evaluator can replay the history).
    ``scale_down_window_s`` fixes the scale-down stabilization window (default: 300 s,
    or the cheaper of 300 and 600 s that the replay finds safe).
    """
    base = target_fraction(
        aggressiveness, traffic.ramp_per_startup, traffic.burst_factor, model_error
    )
    replay = evaluator is not None and history_rps.size > 0
    if fractions is None:
        # the replay may loosen the rule's margin, never past what the model's error allows
        loosest = min(0.95, base * 1.1, model_margin(model_error))
        fractions = [base, base * 0.85, max(loosest, base)] if replay else [base]
    windows = [300, 600] if replay else [300]
    if scale_down_window_s is not None:
        windows = [scale_down_window_s]
    ceiling = spec_max if budget_max_replicas is None else min(spec_max, budget_max_replicas)
    level, floor_why = floor_demand(traffic, forecast, startup_s + replan_interval_s, history_rps)
    if prior_rps > level:  # little history yet: keep room for what it has not shown
        level, floor_why = prior_rps, "little history yet: sized for the start-up prior"
    step = sampling_step(timestamps_s)
    best: tuple[tuple[float, float], AutoscalingPlan] | None = None
    # a lower target keeps at least as many replicas at every step (hence costs at
    # least as much): once a target meets MAX_VIOLATION with a window, no lower one
    # can win with that window, and its replay is skipped
    clean: dict[int, float] = {}
    for fraction in fractions:
        target = capacity_rps * fraction
        low = max(spec_min, math.ceil(level / target - 1e-9))
        high = max(ceiling, 1)
        why: list[str] = []
        if low > spec_min and floor_why:
            capped = f" (capped at {high})" if low > high else ""
            why.append(f"minReplicas {low}{capped}: {floor_why}")
        low = min(low, high)
        for window in windows:
            if clean.get(window, 0.0) > fraction:
                continue
            behavior = behavior_for(traffic.kind, startup_s, window)
            evaluation = None
            if evaluator is not None and history_rps.size:
                evaluation = evaluator(
                    AutoscalingCandidate(
                        target,
                        low,
                        high,
                        behavior,
                        capacity_rps,
                        startup_s,
                        hourly_cost_per_replica,
                        timestamps_s,
                        history_rps,
                        step,
                    )
                )
            plan = AutoscalingPlan(target, low, high, behavior, fraction, evaluation, tuple(why))
            key = (0.0, 0.0)
            if evaluation is not None:
                miss = max(evaluation.slo_violation_fraction - MAX_VIOLATION, 0.0)
                key = (miss, evaluation.hourly_cost)
                if miss == 0.0:
                    clean[window] = max(clean.get(window, 0.0), fraction)
            if best is None or key < best[0]:
                best = (key, plan)
    assert best is not None
    return best[1]
