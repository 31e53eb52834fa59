"""The HorizontalPodAutoscaler (autoscaling/v2) as kube-controller-manager runs it.

One :class:`Hpa` object is one HPA's controller state; :meth:`Hpa.sync` is one pass of
the control loop (every 15 s by default, ``--horizontal-pod-autoscaler-sync-period``).
It follows the controller's source (``pkg/controller/podautoscaler``, release 1.36) and
is held to translated cases of its own unit tests (``tests/unit/simulate/
test_hpa_upstream.py``):

0. the first pass of a new HPA records the current replica count as a recommendation
   (``recordInitialRecommendation``), so a fresh HPA cannot scale down within its first
   scale-down stabilisation window;
1. outside ``[minReplicas, maxReplicas]`` the current count is clamped and nothing else
   happens; with zero current replicas autoscaling is off;
2. the replica calculator (:func:`metric_replicas`) over the pods as :func:`group_pods`
   sorts them: the ratio ``usage / target`` over the pods whose samples count; inside
   the tolerance (``0.9 <= ratio <= 1.1``) nothing changes, otherwise
   ``ceil(ratio * pods)``. Pods set aside (Pending, and for a CPU Resource metric pods
   still initialising) count as 0 when scaling up; pods without a sample count as the
   target (a Resource utilisation metric: ``max(100 %, target)``) when scaling down and 0
   when scaling up, and are left out at a ratio of exactly 1; no action if that flips the
   direction or lands in the tolerance;
3. stabilisation: the recommendation is kept between the lowest recommendation of the
   scale-up window and the highest of the scale-down window (defaults 0 s and 300 s);
4. rate limits: the behavior's policies bound the change relative to the replica count
   at the start of each policy's period, ``selectPolicy`` picking the largest (``Max``)
   or smallest (``Min``) allowed change, or none (``Disabled``); the result is clamped
   to ``[minReplicas, maxReplicas]``.

Defaults (``SetDefaults_HorizontalPodAutoscalerBehavior``): scale-up window 0 s,
policies ``Pods 4 / 15 s`` and ``Percent 100 / 15 s``, ``selectPolicy: Max``;
scale-down window 300 s, ``Percent 100 / 15 s``. An HPA *without* ``spec.behavior``
(``HpaSpec.has_behavior=False``) takes the controller's older path instead: the highest
recommendation of the last 300 s (``--horizontal-pod-autoscaler-downscale-stabilization``)
and at most ``max(2 x current, 4)`` per pass. Time is plain seconds (no clock).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

PolicyType = Literal["Pods", "Percent"]
SelectPolicy = Literal["Max", "Min", "Disabled"]
MetricSource = Literal["Pods", "Resource"]
PodPhase = Literal["Pending", "Running", "Succeeded", "Failed"]

DEFAULT_TOLERANCE = 0.1
DEFAULT_SYNC_SECONDS = 15
#: kube-controller-manager flags (their defaults).
DOWNSCALE_STABILIZATION_SECONDS = 300  # --horizontal-pod-autoscaler-downscale-stabilization
CPU_INITIALIZATION_PERIOD = 300.0  # --horizontal-pod-autoscaler-cpu-initialization-period
INITIAL_READINESS_DELAY = 30.0  # --horizontal-pod-autoscaler-initial-readiness-delay
#: The per-pass cap of an HPA without ``behavior`` (``calculateScaleUpLimit``).
SCALE_UP_LIMIT_FACTOR = 2.0
SCALE_UP_LIMIT_MINIMUM = 4
#: An unset time (Go's zero ``time.Time``): earlier than anything else.
LONG_AGO = -1e10


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
DEFAULT_SCALE_DOWN = ScalingRules(
    DOWNSCALE_STABILIZATION_SECONDS, (ScalingPolicy("Percent", 100, 15),), "Max"
)


@dataclass(frozen=True)
class HpaSpec:
    """What an HPA says: bounds, one metric target per pod, and its behavior."""

    min_replicas: int
    max_replicas: int
    target: float
    """Per-pod target: the metric's AverageValue (``Pods``, e.g. requests/s per replica)
    or the CPU averageUtilization in percent of the request (``Resource``)."""
    scale_up: ScalingRules = DEFAULT_SCALE_UP
    scale_down: ScalingRules = DEFAULT_SCALE_DOWN
    tolerance: float = DEFAULT_TOLERANCE
    metric: MetricSource = "Pods"
    """``Pods``: a Pods metric with an AverageValue target; ``Resource``: cpu with a
    Utilization target (CPU initialisation rules, missing pods at 100 % on the way down,
    utilisation in whole percent)."""
    has_behavior: bool = True
    """False: the HPA object has no ``spec.behavior``; ``scale_up``/``scale_down`` are
    ignored and the controller's older normalisation applies (see the module doc)."""

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


# ----------------------------------------------------------------------------- pods


@dataclass(frozen=True)
class PodMetrics:
    """The pods behind one sync, as the replica calculator groups them.

    ``values`` holds the samples that count (a Running pod's, ready or not; for a CPU
    Resource metric only once it is past its initialisation); ``unready`` counts the
    pods set aside (Pending, or initialising for CPU), which count as 0 on a scale-up;
    ``missing`` counts the other pods without a sample. :func:`group_pods` builds it from
    pod states; the replay builds it directly (its starting pods are set aside).
    """

    values: Sequence[float]
    unready: int = 0
    missing: int = 0


@dataclass(frozen=True)
class ObservedPod:
    """One pod as the controller's pod lister and metrics client show it at a sync.

    Times are seconds on the sync clock (``LONG_AGO`` for unset ones, as in Go).
    """

    sample: float | None = None
    """The pod's metric sample; None: the metrics API returned none for it."""
    phase: PodPhase = "Running"
    ready: bool | None = True
    """Status of the Ready condition; None: the pod has no Ready condition."""
    deleting: bool = False
    """A deletion timestamp is set."""
    started: float | None = LONG_AGO
    """``status.startTime``; None: not set."""
    ready_changed: float = LONG_AGO
    """``lastTransitionTime`` of the Ready condition."""
    sampled: float | None = None
    """The sample's timestamp (the end of its window); None: taken at the sync."""
    window: float = 60.0
    """The sample's window (metrics-server reports CPU over a window)."""


def group_pods(
    pods: Iterable[ObservedPod],
    now: float,
    *,
    cpu: bool,
    cpu_initialization_period: float = CPU_INITIALIZATION_PERIOD,
    initial_readiness_delay: float = INITIAL_READINESS_DELAY,
) -> PodMetrics:
    """Sort pods as the controller's ``groupPods`` does (``cpu``: a CPU Resource metric).

    Deleted and Failed pods are dropped; Pending pods are set aside; pods without a
    sample are missing. Readiness matters only for CPU, whose samples from a pod still
    starting up are distorted by the start-up itself; a request-rate or queue sample from
    a Running pod counts whether the pod is ready or not.
    """
    values: list[float] = []
    unready = missing = 0
    for pod in pods:
        if pod.deleting or pod.phase == "Failed":
            continue
        if pod.phase == "Pending":
            unready += 1
        elif pod.sample is None:
            missing += 1
        elif cpu and _cpu_sample_unusable(
            pod, now, cpu_initialization_period, initial_readiness_delay
        ):
            unready += 1
        else:
            values.append(pod.sample)
    return PodMetrics(values, unready, missing)


def _cpu_sample_unusable(pod: ObservedPod, now: float, period: float, delay: float) -> bool:
    if pod.ready is None or pod.started is None:
        return True
    if pod.started + period > now:
        # Initialising: trust only a ready pod's sample taken wholly after it became ready.
        sampled = now if pod.sampled is None else pod.sampled
        return pod.ready is False or sampled < pod.ready_changed + pod.window
    # Later, only a pod that has not been ready since it started is set aside.
    return pod.ready is False and pod.started + delay > pod.ready_changed


# ----------------------------------------------------------------------------- calculator


def metric_replicas(
    current: int,
    metrics: PodMetrics,
    target: float,
    tolerance: float = DEFAULT_TOLERANCE,
    metric: MetricSource = "Pods",
) -> int | None:
    """Replicas one per-pod metric asks for (the replica calculator), or None.

    None means the controller got no usable metrics and keeps the current count.
    """
    values = list(metrics.values)
    if not values:
        return None
    ratio = _usage_ratio(values, target, metric)
    scale_up_with_unready = metrics.unready > 0 and ratio > 1.0
    if not scale_up_with_unready and metrics.missing == 0:
        if _within(ratio, tolerance):
            return current
        return math.ceil(ratio * len(values))
    # Fill the gaps conservatively: towards the target on the way down, 0 on the way up;
    # at a ratio of exactly 1 the missing pods are left out (upstream fills neither way).
    if metrics.missing and ratio < 1.0:
        values += [_missing_on_scale_down(target, metric)] * metrics.missing
    elif metrics.missing and ratio > 1.0:
        values += [0.0] * metrics.missing
    if scale_up_with_unready:
        values += [0.0] * metrics.unready
    new_ratio = _usage_ratio(values, target, metric)
    if _within(new_ratio, tolerance) or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current
    proposal = math.ceil(new_ratio * len(values))
    if (new_ratio < 1.0 and proposal > current) or (new_ratio > 1.0 and proposal < current):
        return current
    return proposal


def _within(ratio: float, tolerance: float) -> bool:
    # Written as the controller does (Tolerances.isWithin), so that a ratio of exactly
    # 1.1 is inside a 10 % tolerance (abs(1 - 1.1) is 0.10000000000000009 in floats).
    return 1.0 - tolerance <= ratio <= 1.0 + tolerance


def _usage_ratio(values: Sequence[float], target: float, metric: MetricSource) -> float:
    mean = sum(values) / len(values)
    if metric == "Resource":
        # Utilisation is an integer percentage upstream (int32 of usage*100/request).
        return math.floor(mean + 1e-9) / target
    return mean / target


def _missing_on_scale_down(target: float, metric: MetricSource) -> float:
    # A pod without a CPU sample is assumed to use its whole request (or the target,
    # when the target is above 100 %); for other metrics, exactly the target.
    return max(100.0, target) if metric == "Resource" else target


# ----------------------------------------------------------------------------- controller


@dataclass(frozen=True)
class ScaleEvent:
    """A replica change the controller made (kept for the behavior's rate limits)."""

    time: float
    change: int


@dataclass
class Hpa:
    """Controller state of one HPA: recommendations and scale events."""

    spec: HpaSpec
    recommendations: deque[tuple[float, int]] | None = None
    """(time, recommendation); None until the first sync, which seeds it with the current
    replica count (pass an empty deque for a controller that already knows this HPA)."""
    scale_up_events: list[ScaleEvent] = field(default_factory=list)
    scale_down_events: list[ScaleEvent] = field(default_factory=list)
    last_scale_at: float | None = None
    """When it last changed the replica count (``status.lastScaleTime``)."""

    def sync(self, now: float, current: int, metrics: PodMetrics) -> int:
        """One control-loop pass: the replica count the HPA writes to the scale subresource."""
        spec = self.spec
        if self.recommendations is None:
            self.recommendations = deque([(now, current)])
        if current == 0 and spec.min_replicas != 0:
            return 0  # scaled to zero by hand: autoscaling is disabled
        if current > spec.max_replicas:
            desired = spec.max_replicas
        elif current < spec.min_replicas:
            desired = spec.min_replicas
        else:
            proposal = metric_replicas(current, metrics, spec.target, spec.tolerance, spec.metric)
            if proposal is None:  # no metrics: the controller keeps the current count
                return current
            desired = self.limit_rate(now, current, self.stabilize(now, current, proposal))
        if desired != current:
            self.last_scale_at = now
            if spec.has_behavior:  # only a behavior reads the events
                self._record(now, current, desired)
        return desired

    # -- stabilisation (stabilizeRecommendation[WithBehaviors]) -------------------

    def stabilize(self, now: float, current: int, proposal: int) -> int:
        """The proposal kept within the recent recommendations; records the proposal."""
        recs: deque[tuple[float, int]] = self.recommendations or deque()
        if self.spec.has_behavior:
            up_cut = now - self.spec.scale_up.stabilization_window_seconds
            down_cut = now - self.spec.scale_down.stabilization_window_seconds
            up = min((r for t, r in recs if t > up_cut), default=proposal)
            down = max((r for t, r in recs if t > down_cut), default=proposal)
            result = min(max(current, min(up, proposal)), max(down, proposal))
            oldest = min(up_cut, down_cut)
        else:  # no behavior: the highest recommendation of the window, either way
            oldest = now - DOWNSCALE_STABILIZATION_SECONDS
            result = max((r for t, r in recs if t >= oldest), default=proposal)
            result = max(result, proposal)
        # Older than every window: never read again (upstream overwrites such an entry).
        self.recommendations = deque((t, r) for t, r in recs if t >= oldest)
        self.recommendations.append((now, proposal))
        return result

    # -- rate limits (convertDesiredReplicasWith{BehaviorRate,Rules}) -------------

    def limit_rate(self, now: float, current: int, desired: int) -> int:
        """``desired`` bounded by the scaling rules and ``[minReplicas, maxReplicas]``."""
        spec = self.spec
        if not spec.has_behavior:
            cap = int(max(SCALE_UP_LIMIT_FACTOR * current, SCALE_UP_LIMIT_MINIMUM))
            return max(spec.min_replicas, min(desired, spec.max_replicas, cap))
        if desired > current:
            limit = max(self._up_limit(now, current), current)
            return min(desired, spec.max_replicas, limit)
        if desired < current:
            limit = min(self._down_limit(now, current), current)
            return max(desired, spec.min_replicas, limit)
        return desired

    def _period_start(self, now: float, current: int, period: int) -> int:
        """The replica count at the start of a policy's period (changes within it undone)."""
        cut = now - period
        added = sum(e.change for e in self.scale_up_events if e.time > cut)
        removed = sum(e.change for e in self.scale_down_events if e.time > cut)
        return current - added + removed

    def _up_limit(self, now: float, current: int) -> int:
        rules = self.spec.scale_up
        if rules.select_policy == "Disabled":
            return current
        pick = max if rules.select_policy == "Max" else min
        result: int | None = None
        for policy in rules.policies:
            start = self._period_start(now, current, policy.period_seconds)
            if policy.type == "Pods":
                proposed = start + policy.value
            else:  # rounded up, or a small percentage would never add a pod
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
            start = self._period_start(now, current, policy.period_seconds)
            if policy.type == "Pods":
                proposed = start - policy.value
            else:
                proposed = int(start * (1 - policy.value / 100))
            result = proposed if result is None else pick(result, proposed)
        return current if result is None else result

    def _record(self, now: float, current: int, desired: int) -> None:
        longest_up = max((p.period_seconds for p in self.spec.scale_up.policies), default=0)
        longest_down = max((p.period_seconds for p in self.spec.scale_down.policies), default=0)
        self.scale_up_events = [e for e in self.scale_up_events if e.time > now - longest_up]
        self.scale_down_events = [e for e in self.scale_down_events if e.time > now - longest_down]
        if desired > current:
            self.scale_up_events.append(ScaleEvent(now, desired - current))
        else:
            self.scale_down_events.append(ScaleEvent(now, current - desired))
