"""The HorizontalPodAutoscaler (autoscaling/v2) as kube-controller-manager runs it.

One :class:`Hpa` object is one HPA's controller state; :meth:`Hpa.sync` is one pass of
the control loop (every 15 s by default, ``--horizontal-pod-autoscaler-sync-period``).
It follows the controller's documented algorithm and its source
(``pkg/controller/podautoscaler``):

1. outside ``[minReplicas, maxReplicas]`` the current count is clamped and nothing else
   happens; with zero current replicas autoscaling is off;
2. the ratio ``usage / target`` over the pods that have metrics; inside the tolerance
   (``|1 - ratio| <= 0.1``) nothing changes, otherwise ``ceil(ratio * readyPods)``;
   when scaling up with not-yet-ready pods around, those pods are counted as using 0
   and the ratio recomputed (no action if that flips the direction or lands in the
   tolerance); pods without metrics count as the target when scaling down and 0 when
   scaling up;
3. stabilisation: the recommendation is kept between the lowest recommendation of the
   scale-up window and the highest of the scale-down window (defaults 0 s and 300 s);
4. rate limits: the behavior's policies bound the change relative to the replica count
   at the start of each policy's period, ``selectPolicy`` picking the largest (``Max``)
   or smallest (``Min``) allowed change, or none (``Disabled``); the result is clamped
   to ``[minReplicas, maxReplicas]``.

Defaults (``SetDefaults_HorizontalPodAutoscalerBehavior``): scale-up window 0 s,
policies ``Pods 4 / 15 s`` and ``Percent 100 / 15 s``, ``selectPolicy: Max``;
scale-down window 300 s, ``Percent 100 / 15 s``.  Time is plain seconds (no clock).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

PolicyType = Literal["Pods", "Percent"]
SelectPolicy = Literal["Max", "Min", "Disabled"]

DEFAULT_TOLERANCE = 0.1
DEFAULT_SYNC_SECONDS = 15


@dataclass(frozen=True)
class ScalingPolicy:
    type: PolicyType
    value: int
    period_seconds: int


@dataclass(frozen=True)
class ScalingRules:
    stabilization_window_seconds: int
    policies: tuple[ScalingPolicy, ...]
    select_policy: SelectPolicy = "Max"


DEFAULT_SCALE_UP = ScalingRules(
    0, (ScalingPolicy("Pods", 4, 15), ScalingPolicy("Percent", 100, 15)), "Max"
)
DEFAULT_SCALE_DOWN = ScalingRules(300, (ScalingPolicy("Percent", 100, 15),), "Max")


@dataclass(frozen=True)
class HpaSpec:
    """What an HPA says: bounds, one AverageValue target per pod, and its behavior."""

    min_replicas: int
    max_replicas: int
    target: float
    """Target average value of the metric per pod (e.g. requests/s per replica)."""
    scale_up: ScalingRules = DEFAULT_SCALE_UP
    scale_down: ScalingRules = DEFAULT_SCALE_DOWN
    tolerance: float = DEFAULT_TOLERANCE

    def __post_init__(self) -> None:
        if not (1 <= self.min_replicas <= self.max_replicas):
            raise ValueError("need 1 <= minReplicas <= maxReplicas")
        if not self.target > 0:
            raise ValueError("target must be > 0")


def rules_from_behavior(data: dict[str, Any] | None, default: ScalingRules) -> ScalingRules:
    """ScalingRules from an HPA v2 ``behavior.scaleUp``/``scaleDown`` object (camelCase).

    Missing fields take the Kubernetes defaults of ``default``.
    """
    if not data:
        return default
    policies = tuple(
        ScalingPolicy(p["type"], int(p["value"]), int(p["periodSeconds"]))
        for p in data.get("policies") or ()
    )
    return ScalingRules(
        int(data.get("stabilizationWindowSeconds", default.stabilization_window_seconds)),
        policies or default.policies,
        data.get("selectPolicy", default.select_policy),
    )


@dataclass
class _Event:
    time: float
    change: int


@dataclass(frozen=True)
class PodMetrics:
    """What the metrics pipeline reports at one sync.

    ``values`` holds the metric of each ready pod that has one; ``unready`` counts pods
    that are not ready yet (pending, pulling, loading); ``missing`` counts ready pods
    without a sample.
    """

    values: Sequence[float]
    unready: int = 0
    missing: int = 0


@dataclass
class Hpa:
    """Controller state of one HPA: recommendations and scale events."""

    spec: HpaSpec
    _recommendations: deque[tuple[float, int]] = field(default_factory=deque)
    _up_events: list[_Event] = field(default_factory=list)
    _down_events: list[_Event] = field(default_factory=list)

    def sync(self, now: float, current: int, metrics: PodMetrics) -> int:
        """One control-loop pass: the replica count the HPA writes to the scale subresource."""
        spec = self.spec
        if current == 0 and spec.min_replicas != 0:
            return 0  # scaled to zero by hand: autoscaling is disabled
        if current > spec.max_replicas:
            desired = spec.max_replicas
        elif current < spec.min_replicas:
            desired = spec.min_replicas
        else:
            proposal = metric_replicas(current, metrics, spec.target, spec.tolerance)
            if proposal is None:  # no metrics: the controller keeps the current count
                return current
            stabilised = self._stabilise(now, current, proposal)
            desired = self._rate_limit(now, current, stabilised)
        if desired != current:
            self._record(now, current, desired)
        return desired

    # -- stabilisation (stabilizeRecommendationWithBehaviors) --------------------

    def _stabilise(self, now: float, current: int, proposal: int) -> int:
        up_cut = now - self.spec.scale_up.stabilization_window_seconds
        down_cut = now - self.spec.scale_down.stabilization_window_seconds
        up, down = proposal, proposal
        for stamp, rec in self._recommendations:
            if stamp > up_cut and rec < up:
                up = rec
            if stamp > down_cut and rec > down:
                down = rec
        oldest = min(up_cut, down_cut)
        recs = self._recommendations
        while recs and recs[0][0] < oldest:  # older than both windows: never used again
            recs.popleft()
        recs.append((now, proposal))
        return min(max(current, up), down)

    # -- rate limits (convertDesiredReplicasWithBehaviorRate) ---------------------

    def _rate_limit(self, now: float, current: int, desired: int) -> int:
        spec = self.spec
        if desired > current:
            limit = max(self._up_limit(now, current), current)
            return min(desired, spec.max_replicas, limit)
        if desired < current:
            limit = min(self._down_limit(now, current), current)
            return max(desired, spec.min_replicas, limit)
        return desired

    def _changes(self, now: float, period: int, events: list[_Event]) -> int:
        return sum(e.change for e in events if e.time > now - period)

    def _up_limit(self, now: float, current: int) -> int:
        rules = self.spec.scale_up
        if rules.select_policy == "Disabled":
            return current
        pick = max if rules.select_policy == "Max" else min
        result: int | None = None
        for policy in rules.policies:
            start = (
                current
                - self._changes(now, policy.period_seconds, self._up_events)
                + self._changes(now, policy.period_seconds, self._down_events)
            )
            if policy.type == "Pods":
                proposed = start + policy.value
            else:
                proposed = math.ceil(start * (1 + policy.value / 100))
            result = proposed if result is None else pick(result, proposed)
        return current if result is None else result

    def _down_limit(self, now: float, current: int) -> int:
        rules = self.spec.scale_down
        if rules.select_policy == "Disabled":
            return current
        pick = min if rules.select_policy == "Max" else max  # Max: the largest change
        result: int | None = None
        for policy in rules.policies:
            start = (
                current
                - self._changes(now, policy.period_seconds, self._up_events)
                + self._changes(now, policy.period_seconds, self._down_events)
            )
            if policy.type == "Pods":
                proposed = start - policy.value
            else:
                proposed = int(start * (1 - policy.value / 100))
            result = proposed if result is None else pick(result, proposed)
        return current if result is None else result

    def _record(self, now: float, current: int, desired: int) -> None:
        longest_up = max((p.period_seconds for p in self.spec.scale_up.policies), default=0)
        longest_down = max((p.period_seconds for p in self.spec.scale_down.policies), default=0)
        self._up_events = [e for e in self._up_events if e.time > now - longest_up]
        self._down_events = [e for e in self._down_events if e.time > now - longest_down]
        if desired > current:
            self._up_events.append(_Event(now, desired - current))
        else:
            self._down_events.append(_Event(now, current - desired))


def metric_replicas(
    current: int, metrics: PodMetrics, target: float, tolerance: float = DEFAULT_TOLERANCE
) -> int | None:
    """Replicas a Pods/AverageValue metric asks for (the replica calculator), or None.

    None means the controller got no usable metrics and keeps the current count.
    """
    values = list(metrics.values)
    if not values:
        return None
    ready = len(values)
    ratio = sum(values) / (target * ready)
    scale_up_with_unready = metrics.unready > 0 and ratio > 1.0
    if not scale_up_with_unready and metrics.missing == 0:
        if abs(1.0 - ratio) <= tolerance:
            return current
        return math.ceil(ratio * ready)
    if metrics.missing:
        values += [target if ratio < 1.0 else 0.0] * metrics.missing
    if scale_up_with_unready:
        values += [0.0] * metrics.unready
    new_ratio = sum(values) / (target * len(values))
    if abs(1.0 - new_ratio) <= tolerance or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current
    proposal = math.ceil(new_ratio * len(values))
    if (new_ratio < 1.0 and proposal > current) or (new_ratio > 1.0 and proposal < current):
        return current
    return proposal
