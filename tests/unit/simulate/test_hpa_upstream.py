"""The HPA emulation against cases translated from Kubernetes' own controller tests.

Source: kubernetes/kubernetes ``pkg/controller/podautoscaler/replica_calculator_test.go``
and ``horizontal_test.go`` (release 1.36 era). Every row names the upstream test (and
sub-case) it translates; inputs and expected outputs are restated in the emulation's
terms, the code is this module's own. What is translated how:

* CPU levels are utilisation in percent of the pod's request (upstream: milli-CPU usage
  over requests). Where upstream gives pods different requests, every pod here has the
  same request and the utilisation upstream aggregates (total usage over total request):
  the emulation's pods are identical, and the aggregate is what the calculator uses.
* Pods-metric levels are in the metric's unit (upstream: milli-units).
* Times are seconds with the sync at ``NOW = 0``; a "hot" pod started now, a "cool" one
  3 min ago, and the upstream tests run with a 2 min CPU initialisation period and a
  10 s readiness delay (the kube-controller-manager defaults are 5 min and 30 s).
* A controller that already knows the HPA (upstream ``recommendations: []``) is
  ``Hpa(spec, recommendations=deque())``; a new one (upstream ``nil``) is seeded with the
  current replica count on its first sync.
* An upstream test HPA without ``scaleUpRules``/``scaleDownRules`` has no
  ``spec.behavior``: ``has_behavior=False``. The upstream harness raises the behavior-less
  scale-up cap factor from 2 to 8 so as not to hit it; none of these rows reaches either.

Out of scope, and why: Object, External and ContainerResource metrics (servingopt's HPA
has one pod-level Pods or cpu Resource metric), several metrics at once, minReplicas 0
(the HPAScaleToZero alpha gate; the emulation requires minReplicas >= 1), status
conditions, Events, API errors and selector conflicts, and the layout of the stored
controller history (``TestStoreScaleEvents``, the log lengths of the normalisation
tests): they do not change a replica count.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import pytest

from servingopt.simulate.hpa import (
    LONG_AGO,
    Hpa,
    HpaSpec,
    MetricSource,
    ObservedPod,
    PodMetrics,
    PodPhase,
    ScaleEvent,
    ScalingPolicy,
    ScalingRules,
    SelectPolicy,
    group_pods,
    metric_replicas,
)

NOW = 0.0
HOT = NOW  # hotCPUCreationTime: started at the sync
COOL = NOW - 180.0  # coolCPUCreationTime: started 3 min before
INIT_PERIOD = 120.0  # defaultTestingCPUInitializationPeriod
READINESS_DELAY = 10.0  # defaultTestingDelayOfInitialReadinessStatus


# ----------------------------------------------------------------------------- pods


def running(
    sample: float | None,
    *,
    ready: bool = True,
    started: float = LONG_AGO,
    phase: PodPhase = "Running",
    deleting: bool = False,
) -> ObservedPod:
    """A pod whose Ready condition last changed when it started (the upstream fixtures)."""
    return ObservedPod(sample, phase, ready, deleting, started, ready_changed=started)


def unready(sample: float | None) -> ObservedPod:
    return running(sample, ready=False)


def hot(sample: float | None, ready: bool = True) -> ObservedPod:
    return running(sample, ready=ready, started=HOT)


def cool(sample: float | None, ready: bool = True) -> ObservedPod:
    return running(sample, ready=ready, started=COOL)


def silent() -> ObservedPod:
    """A Running, ready pod the metrics API returned no sample for."""
    return running(None)


def pending() -> ObservedPod:
    return running(None, ready=False, phase="Pending")


def failed() -> ObservedPod:
    return running(None, ready=False, phase="Failed")


def terminating() -> ObservedPod:
    return running(None, ready=False, deleting=True)


def levels(*samples: float) -> tuple[ObservedPod, ...]:
    return tuple(running(s) for s in samples)


def grouped(pods: tuple[ObservedPod, ...], metric: MetricSource) -> PodMetrics:
    return group_pods(
        pods,
        NOW,
        cpu=metric == "Resource",
        cpu_initialization_period=INIT_PERIOD,
        initial_readiness_delay=READINESS_DELAY,
    )


# ----------------------------------------------------------------------------- replica calculator


@dataclass(frozen=True)
class Calc:
    upstream: str
    metric: MetricSource
    target: float
    current: int
    pods: tuple[ObservedPod, ...]
    expected: int | None  # None: no usable metrics (upstream: an error, the count stays)


CPU: MetricSource = "Resource"
QPS: MetricSource = "Pods"
R = "TestReplicaCalc"

# upstream: replica_calculator_test.go, Test<name> (R = "TestReplicaCalc")
CALCULATOR = [
    Calc(R + "ScaleUp", CPU, 30, 3, levels(30, 50, 70), 5),
    Calc(R + "ScaleUpUnreadyLessScale", CPU, 30, 3, (unready(30), *levels(50, 70)), 4),
    Calc(R + "ScaleUpHotCpuLessScale", CPU, 30, 3, (hot(30), cool(50), cool(70)), 4),
    Calc(R + "ScaleUpUnreadyNoScale", CPU, 30, 3, (running(40), unready(50), unready(70)), 3),
    Calc(R + "ScaleHotCpuNoScale", CPU, 30, 3, (cool(40), hot(50, False), hot(70, False)), 3),
    Calc(R + "ScaleUpIgnoresFailedPods", CPU, 30, 2, (*levels(50, 70), failed(), failed()), 4),
    Calc(R + "ScaleUpIgnoresDeletionPods", CPU, 30, 2,
         (*levels(50, 70), terminating(), terminating()), 4),
    Calc(R + "ScaleUpCM", QPS, 15, 3, levels(20, 10, 30), 4),
    # A not-ready pod's request rate counts: readiness matters for CPU only.
    Calc(R + "ScaleUpCMUnreadyHotCpuNoLessScale", QPS, 15, 3,
         (cool(50), cool(10), hot(30, False)), 6),
    Calc(R + "ScaleUpCMUnreadyHotCpuScaleWouldScaleDown", QPS, 15, 3,
         (hot(50, False), cool(15), hot(30, False)), 7),
    Calc(R + "ScaleUpCMExternal", QPS, 4.4, 1, levels(8.6), 2),  # a Pods metric upstream too
    Calc(R + "ScaleUpCMExternalNoLabels", QPS, 4.4, 1, levels(8.6), 2),
    Calc(R + "ScaleDown", CPU, 50, 5, levels(10, 30, 50, 25, 25), 3),
    Calc(R + "ScaleDownCM", QPS, 20, 5, levels(12, 12, 12, 12, 12), 3),
    Calc(R + "ScaleDownExcludeUnreadyPods", CPU, 50, 5,
         (*levels(10, 30, 50), unready(25), unready(25)), 2),
    Calc(R + "ScaleDownExcludeUnscheduledPods", CPU, 50, 5, (running(10), *[pending()] * 4), 1),
    Calc(R + "ScaleDownIgnoreHotCpuPods", CPU, 50, 5,
         (cool(10), cool(30), cool(50), hot(25), hot(25)), 2),
    Calc(R + "ScaleDownIgnoresFailedPods", CPU, 50, 5,
         (*levels(10, 30, 50, 25, 25), failed(), failed()), 3),
    Calc(R + "ScaleDownIgnoresDeletionPods", CPU, 50, 5,
         (*levels(10, 30, 50, 25, 25), terminating(), terminating()), 3),
    # Requests 0.9/1.0/1.1 upstream: 3060m used of 3000m requested, 102 %.
    Calc(R + "Tolerance", CPU, 100, 3, levels(102, 102, 102), 3),
    Calc(R + "ToleranceCM", QPS, 20, 3, levels(20, 21, 21), 3),
    # Two of the six samples are for pods that do not exist: ignored, so absent here.
    Calc(R + "SuperfluousMetrics", CPU, 100, 4, levels(400, 950, 300, 700), 24),
    Calc(R + "MissingMetrics", CPU, 100, 4, (*levels(40, 9.5), silent(), silent()), 3),
    Calc(R + "EmptyMetrics", CPU, 100, 4, (silent(), silent(), silent()), None),
    # At a ratio of exactly 1 the pods without a sample are left out: no change.
    Calc("TestPlainMetricReplicaCalcMissingMetricsNoChangeEq", QPS, 20, 5,
         (*levels(20, 19, 21), silent(), silent()), 5),
    Calc(R + "MissingMetricsNoChangeEq", CPU, 100, 2, (running(100), silent()), 2),
    Calc(R + "MissingMetricsNoChangeGt", CPU, 100, 2, (running(190), silent()), 2),
    Calc(R + "MissingMetricsNoChangeLt", CPU, 100, 2, (running(60), silent()), 2),
    Calc(R + "MissingMetricsUnreadyChange", CPU, 50, 3, (unready(10), running(45), silent()), 3),
    Calc(R + "MissingMetricsHotCpuNoChange", CPU, 50, 3, (hot(10), cool(45), cool(None)), 3),
    Calc(R + "MissingMetricsUnreadyScaleUp", CPU, 50, 3, (unready(10), running(200), silent()), 4),
    Calc(R + "MissingMetricsHotCpuScaleUp", CPU, 50, 3,
         (hot(10, False), cool(200), cool(None)), 4),
    # A pod without a CPU sample counts as using its whole request on the way down.
    Calc(R + "MissingMetricsUnreadyScaleDown", CPU, 50, 4,
         (unready(10), *levels(10, 10), silent()), 3),
    # Requests 1/1/2/2 upstream: the two counted pods use 400m of 6000m; the missing one
    # counts at the 300 % target.
    Calc(R + "MissingMetricsScaleDownTargetOver100", CPU, 300, 4,
         (unready(20), *levels(6.67, 6.67), silent()), 2),
    Calc(R + "DuringRollingUpdateWithMaxSurge", CPU, 50, 2, (*levels(10, 10), silent()), 2),
    Calc(R + "DuringRollingUpdateWithMaxSurgeCM", QPS, 17, 2, (*levels(10, 10), silent()), 2),
    # 150m used of 300m (+- jitter, 3000m in all) requested per pod, 50 %: a 56 % target
    # is just outside the tolerance, 55 % just inside.
    Calc(R + "ComputedToleranceAlgImplementation/56%", CPU, 56, 10, levels(*[50] * 10), 9),
    Calc(R + "ComputedToleranceAlgImplementation/55%", CPU, 55, 10, levels(*[50] * 10), 10),
]  # fmt: skip


@pytest.mark.parametrize("case", CALCULATOR, ids=lambda c: c.upstream)
def test_replica_calculator(case: Calc) -> None:
    metrics = grouped(case.pods, case.metric)
    got = metric_replicas(case.current, metrics, case.target, metric=case.metric)
    assert got == case.expected


# ----------------------------------------------------------------------------- pod grouping


@dataclass(frozen=True)
class Grouping:
    upstream: str
    cpu: bool
    pod: ObservedPod | None
    expected: tuple[int, int, int]  # samples that count, set aside, missing


def phased(
    sample: float | None,
    *,
    phase: PodPhase = "Succeeded",
    ready: bool | None = None,
    started: float | None = None,
    changed: float = LONG_AGO,
    sampled: float = LONG_AGO,
    window: float = 60.0,
    deleting: bool = False,
) -> ObservedPod:
    """A pod as TestGroupPods writes them: only the fields each sub-case sets."""
    return ObservedPod(sample, phase, ready, deleting, started, changed, sampled, window)


G = "TestGroupPods/"
INIT = " during initialization period - CPU"
AFTER = " after initialization period - CPU"

# upstream: replica_calculator_test.go, TestGroupPods, one pod per sub-case
GROUPING = [
    Grouping(G + "void", True, None, (0, 0, 0)),
    Grouping(G + "count in a ready pod - memory", False, phased(1), (1, 0, 0)),
    Grouping(G + "unready a pod without ready condition - CPU", True,
             phased(1, started=NOW), (0, 1, 0)),
    Grouping(G + "count in a ready pod with fresh metrics" + INIT, True,
             phased(1, ready=True, started=-60, changed=-30, sampled=NOW, window=30), (1, 0, 0)),
    Grouping(G + "unready a ready pod without fresh metrics" + INIT, True,
             phased(1, ready=True, started=-60, changed=-30, sampled=NOW, window=60), (0, 1, 0)),
    Grouping(G + "unready an unready pod" + INIT, True,
             phased(1, ready=False, started=-600, changed=-594), (0, 1, 0)),
    Grouping(G + "count in a ready pod without fresh metrics" + AFTER, True,
             phased(1, ready=True, started=-180, changed=-180, sampled=-120), (1, 0, 0)),
    Grouping(G + "count in an unready pod that was ready" + AFTER, True,
             phased(1, ready=False, started=-600, changed=-540), (1, 0, 0)),
    # Ready 10 s after its start is not later than the readiness delay: it counts.
    Grouping(G + "unready pod that has never been ready" + AFTER, True,
             phased(1, ready=False, started=-600, changed=-590), (1, 0, 0)),
    Grouping(G + "a missing pod", True, phased(None, started=-180), (0, 0, 1)),
    Grouping(G + "pending pods are unreadied", True, phased(None, phase="Pending"), (0, 1, 0)),
    Grouping(G + "ignore pods with deletion timestamps", True,
             phased(1, phase="Pending", deleting=True), (0, 0, 0)),
    Grouping(G + "ignore pods in a failed state", True, phased(1, phase="Failed"), (0, 0, 0)),
]  # fmt: skip


def group(pods: list[ObservedPod], cpu: bool) -> tuple[int, int, int]:
    metrics = group_pods(
        pods,
        NOW,
        cpu=cpu,
        cpu_initialization_period=INIT_PERIOD,
        initial_readiness_delay=READINESS_DELAY,
    )
    return len(metrics.values), metrics.unready, metrics.missing


@pytest.mark.parametrize("case", GROUPING, ids=lambda c: c.upstream)
def test_pod_grouping(case: Grouping) -> None:
    assert group([] if case.pod is None else [case.pod], case.cpu) == case.expected


def test_pod_grouping_of_several_pods() -> None:
    # upstream: TestGroupPods/several pods
    pods = [
        phased(1, started=NOW),  # no Ready condition: set aside
        phased(1, ready=True, started=-180, changed=-180),
        phased(None, started=-180),
    ]
    assert group(pods, cpu=True) == (1, 1, 1)


# ----------------------------------------------------------------------------- one controller pass


def rules(
    pods: int = 0,
    pods_period: int = 0,
    percent: int = 0,
    percent_period: int = 0,
    window: int = 0,
    select: SelectPolicy = "Max",
) -> ScalingRules:
    """Scaling rules as the upstream tests generate them: a Pods and/or a Percent policy."""
    policies = []
    if pods:
        policies.append(ScalingPolicy("Pods", pods, pods_period))
    if percent:
        policies.append(ScalingPolicy("Percent", percent, percent_period))
    return ScalingRules(window, tuple(policies), select)


DEFAULT_UP = ScalingRules(0, (ScalingPolicy("Pods", 4, 15), ScalingPolicy("Percent", 100, 15)))
DEFAULT_DOWN = ScalingRules(300, (ScalingPolicy("Percent", 100, 15),))


@dataclass(frozen=True)
class Pass:
    upstream: str
    bounds: tuple[int, int]
    current: int
    metric: MetricSource
    target: float
    pods: tuple[ObservedPod, ...]
    expected: int
    known: bool = False
    """The controller already holds (empty) recommendations: upstream ``[]``, not nil."""
    up: ScalingRules | None = None
    """Set: the HPA has a behavior (scale-down defaulted)."""
    history: tuple[tuple[float, int], ...] = ()


FIVE = levels(10, 30, 50, 25, 25)
B6, B5 = (2, 6), (2, 5)

# upstream: horizontal_test.go, Test<name>
PASSES = [
    Pass("TestScaleUp", B6, 3, CPU, 30, levels(30, 50, 70), 5),
    Pass("TestScaleUpUnreadyLessScale", B6, 3, CPU, 30, (unready(30), *levels(50, 70)), 4),
    Pass("TestScaleUpHotCpuLessScale", B6, 3, CPU, 30, (hot(30), cool(50), cool(70)), 4),
    Pass("TestScaleUpUnreadyNoScale", B6, 3, CPU, 30, (running(40), unready(50), unready(70)), 3),
    Pass("TestScaleUpHotCpuNoScale", B6, 3, CPU, 30, (cool(40), hot(50, False), hot(70, False)), 3),
    Pass("TestScaleUpIgnoresFailedPods", B6, 2, CPU, 30, (*levels(50, 70), failed(), failed()), 4),
    Pass("TestScaleUpIgnoresDeletionPods", B6, 2, CPU, 30,
         (*levels(50, 70), terminating(), terminating()), 4),
    Pass("TestScaleUpCM", B6, 3, QPS, 15, levels(20, 10, 30), 4),
    Pass("TestScaleUpCMUnreadyAndHotCpuNoLessScale", B6, 3, QPS, 15,
         (cool(50), cool(10), hot(30, False)), 6),
    Pass("TestScaleUpCMUnreadyandCpuHot", B6, 3, QPS, 15,
         (hot(50, False), cool(15), hot(30, False)), 6),
    Pass("TestScaleUpHotCpuNoScaleWouldScaleDown", B6, 3, QPS, 15, (hot(50), cool(15), hot(30)), 6),
    Pass("TestScaleDown", B6, 5, CPU, 50, FIVE, 3, known=True),
    Pass("TestScaleDownWithScalingRules", B6, 5, CPU, 50, FIVE, 3, known=True,
         up=rules(0, 0, 100, 15, 30)),
    # A new HPA holds its first 300 s: the current count is its first recommendation.
    Pass("TestScaleDownStabilizeInitialSize", B6, 5, CPU, 50, FIVE, 5),
    Pass("TestScaleDownCM", B6, 5, QPS, 20, levels(12, 12, 12, 12, 12), 3, known=True),
    Pass("TestScaleDownIncludeUnreadyPods", B6, 5, CPU, 50,
         (*levels(10, 30, 50), unready(25), unready(25)), 2, known=True),
    Pass("TestScaleDownIgnoreHotCpuPods", B6, 5, CPU, 50,
         (cool(10), cool(30), cool(50), hot(25), hot(25)), 2, known=True),
    Pass("TestScaleDownIgnoresFailedPods", B6, 5, CPU, 50, (*FIVE, failed(), failed()), 3,
         known=True),
    Pass("TestScaleDownIgnoresDeletionPods", B6, 5, CPU, 50, (*FIVE, terminating(), terminating()),
         3, known=True),
    # Requests 0.9/1.0/1.1 upstream: 3060m of 3000m.
    Pass("TestTolerance", (1, 5), 3, CPU, 100, levels(102, 102, 102), 3),
    Pass("TestToleranceCM", (1, 5), 3, QPS, 20, levels(20, 20.001, 21), 3),
    # Requests 0.9/1.0/1.1 upstream: 115m of 3000m.
    Pass("TestMinReplicas", B5, 3, CPU, 90, levels(3.83, 3.83, 3.83), 2, known=True),
    Pass("TestMinReplicasDesiredZero", B5, 3, CPU, 90, levels(0, 0, 0), 2, known=True),
    Pass("TestZeroReplicas", (3, 5), 0, CPU, 90, (), 0),
    Pass("TestTooFewReplicas", (3, 5), 2, CPU, 90, (), 3),
    Pass("TestTooManyReplicas", (3, 5), 10, CPU, 90, (), 5),
    # Requests 0.9/1.0/1.1 upstream: 18500m of 3000m.
    Pass("TestMaxReplicas", B5, 3, CPU, 90, levels(616.67, 616.67, 616.67), 5),
    Pass("TestSuperfluousMetrics", B6, 4, CPU, 100, levels(400, 950, 300, 700), 6),
    Pass("TestMissingMetrics", B6, 4, CPU, 100, (*levels(40, 9.5), silent(), silent()), 3,
         known=True),
    Pass("TestEmptyMetrics", B6, 4, CPU, 100, (silent(),) * 4, 4),
    Pass("TestMissingReports", (1, 5), 4, CPU, 50, levels(100), 2, known=True),
    Pass("TestUpscaleCap", (1, 100), 3, CPU, 10, levels(100, 200, 300), 24,
         up=rules(0, 0, 700, 60)),
    Pass("TestUpscaleCapGreaterThanMaxReplicas", (1, 20), 3, CPU, 10, levels(100, 200, 300), 20,
         up=rules(0, 0, 700, 60)),
    # Five pods during a rollout with surge, four wanted: the Deployment's count is current.
    Pass("TestMoreReplicasThanSpecNoScale", (1, 8), 4, CPU, 50, levels(*[50] * 5), 4),
    Pass("TestNoBackoffUpscaleCM", (1, 5), 3, QPS, 15, levels(20, 10, 30), 4),
    Pass("TestStabilizeDownscale", (1, 5), 4, CPU, 100, levels(50, 50, 50), 4,
         history=((-600, 10), (-60, 4))),
    Pass("TestScaleUpRCImmediately", B6, 1, CPU, 80, levels(0, 0, 0, 0), 2),
    Pass("TestScaleDownRCImmediately", B5, 6, CPU, 50, levels(616.67, 616.67, 616.67), 5),
]  # fmt: skip


@pytest.mark.parametrize("case", PASSES, ids=lambda c: c.upstream)
def test_controller_pass(case: Pass) -> None:
    spec = HpaSpec(
        case.bounds[0],
        case.bounds[1],
        case.target,
        scale_up=case.up or DEFAULT_UP,
        metric=case.metric,
        has_behavior=case.up is not None,
    )
    known = case.known or bool(case.history)
    hpa = Hpa(spec, recommendations=deque(case.history) if known else None)
    assert hpa.sync(NOW, case.current, grouped(case.pods, case.metric)) == case.expected


# ----------------------------------------------------------------------------- normalisation


def legacy(bounds: tuple[int, int]) -> HpaSpec:
    """An HPA without ``behavior`` (the controller's older normalisation)."""
    return HpaSpec(bounds[0], bounds[1], 1.0, has_behavior=False)


C = "TestConvertDesiredReplicasWithRules/"


@pytest.mark.parametrize(
    ("upstream", "current", "desired", "bounds", "expected"),
    [
        (C + "prenormalized desired replicas within range", 5, 7, (3, 8), 7),
        (C + "prenormalized desired replicas < minReplicas", 3, 1, (2, 8), 2),
        (C + "maxReplicas is the limit because maxReplicas < scaleUpLimit", 20, 1000, (1, 10), 10),
        # calculateScaleUpLimit(3): max(2 x 3, 4) with the controller's factor of 2.
        (C + "scaleUpLimit is the limit because scaleUpLimit < maxReplicas", 3, 1000, (1, 2000), 6),
    ],
)
def test_rules_without_behavior(
    upstream: str, current: int, desired: int, bounds: tuple[int, int], expected: int
) -> None:
    assert Hpa(legacy(bounds)).limit_rate(NOW, current, desired) == expected


def test_scale_up_limit_with_min_select_policy() -> None:
    # upstream: TestCalculateScaleUpLimitWithScalingRules (+2 pods or +50 %: the smaller)
    spec = HpaSpec(1, 1000, 1.0, scale_up=rules(2, 60, 50, 60, window=300, select="Min"))
    assert Hpa(spec).limit_rate(NOW, 1, 1000) == 2


def test_scale_down_limit_with_min_select_policy() -> None:
    # upstream: TestCalculateScaleDownLimitWithBehaviors (-2 pods or -50 %: the smaller)
    spec = HpaSpec(1, 1000, 1.0, scale_down=rules(2, 60, 50, 60, window=300, select="Min"))
    assert Hpa(spec).limit_rate(NOW, 5, 1) == 3


N = "TestNormalizeDesiredReplicas/"
OLD = " - old recommendations"


@pytest.mark.parametrize(
    ("upstream", "history", "desired", "expected"),
    [
        (N + "empty log", (), 5, 5),
        (N + "stabilize", ((-120, 4), (-60, 5)), 3, 5),
        (N + "no stabilize", ((-120, 1), (-60, 2)), 3, 3),
        (N + "no stabilize" + OLD, ((-600, 10), (-540, 9)), 3, 3),
        (N + "stabilize" + OLD, ((-600, 10), (-60, 4), (-120, 5), (-540, 9)), 3, 5),
    ],
)
def test_stabilization_without_behavior(
    upstream: str, history: tuple[tuple[float, int], ...], desired: int, expected: int
) -> None:
    hpa = Hpa(legacy((1, 1000)), recommendations=deque(history))
    assert hpa.stabilize(NOW, desired, desired) == expected


S = "TestNormalizeDesiredReplicasWithBehavior/"
REUSE = ", reuse recommendation element"
OBSOLETE = " stabilization, reuse one of obsolete recommendation element"
BOTH = "scale up and down stabilization, do not scale "


@pytest.mark.parametrize(
    ("upstream", "history", "current", "desired", "windows", "expected"),
    [
        (S + "empty recommendations for scaling down", (), 100, 5, (0, 0), 5),
        (S + "simple scale down stabilization", ((-120, 4), (-60, 5)), 100, 3, (0, 180), 5),
        (S + "simple scale up stabilization", ((-120, 4), (-60, 5)), 1, 7, (300, 0), 4),
        (S + "no scale down stabilization", ((-120, 1), (-60, 2)), 100, 3, (300, 0), 3),
        (S + "no scale up stabilization", ((-120, 4), (-60, 5)), 1, 3, (0, 300), 3),
        (S + "no scale down stabilization" + REUSE, ((-600, 10), (-540, 9)), 100, 3, (0, 0), 3),
        (S + "no scale up stabilization" + REUSE, ((-600, 10), (-540, 9)), 1, 100, (0, 0), 100),
        (S + "scale down" + OBSOLETE, ((-600, 10), (-60, 4), (-120, 5), (-540, 9)), 100, 3,
         (0, 180), 5),
        (S + "scale up" + OBSOLETE, ((-6000, 10), (-60, 6), (-120, 5), (-180, 9)), 1, 100,
         (300, 0), 5),
        (S + BOTH + "up when prenormalized rec goes down", ((-6000, 2), (-180, 3)), 2, 1,
         (300, 300), 2),
        (S + BOTH + "down when prenormalized rec goes up", ((-6000, 2), (-180, 1)), 2, 3,
         (300, 300), 2),
    ],
)  # fmt: skip
def test_stabilization_with_behavior(
    upstream: str,
    history: tuple[tuple[float, int], ...],
    current: int,
    desired: int,
    windows: tuple[int, int],
    expected: int,
) -> None:
    spec = HpaSpec(
        1,
        1000,
        1.0,
        scale_up=ScalingRules(windows[0], DEFAULT_UP.policies),
        scale_down=ScalingRules(windows[1], DEFAULT_DOWN.policies),
    )
    hpa = Hpa(spec, recommendations=deque(history))
    assert hpa.stabilize(NOW, current, desired) == expected


# ----------------------------------------------------------------------------- rate limits


def spread(changes: tuple[int, ...], period: float = 120.0) -> list[ScaleEvent]:
    """Scale events at the middles of equal slices of the last ``period`` seconds, oldest
    first (where the upstream tests place theirs)."""
    width = period / len(changes)
    return [
        ScaleEvent(NOW - (period - width * (i + 1) + width / 2), change)
        for i, change in enumerate(changes)
    ]


@dataclass(frozen=True)
class Rate:
    upstream: str
    bounds: tuple[int, int]
    current: int
    desired: int
    expected: int
    up: ScalingRules = DEFAULT_UP
    down: ScalingRules = DEFAULT_DOWN
    ups: tuple[int, ...] = ()  # scale-up events spread over the last 120 s
    downs: tuple[int, ...] = ()


W = "TestScalingWithRules/"
UP, DOWN = W + "scaleUp with ", W + "scaleDown with "
MAXP, MINP = "spec MaxReplicas limitation with large ", "spec MinReplicas limitation with large "
EV = " and previous events"
NIL = "spec MinReplicas=nil limitation with large pod policy"
OUT = W + "check that events were "
TWO = " 'outdated' for two different policies in the behavior for "
K = (1, 1000)

# upstream: horizontal_test.go, TestScalingWithRules sub-cases
RATES = [
    Rate(W + "prenormalized desired replicas within range", (3, 8), 5, 7, 7),
    Rate(W + "prenormalized desired replicas < minReplicas", (2, 8), 3, 1, 2),
    Rate(W + "maxReplicas is the limit because maxReplicas < scaleUpLimit", (1, 10), 20, 1000, 10),
    Rate(W + "desired replica count is more than the maximum replica count", (100, 150), 100,
         1000, 150),
    Rate(W + "scaleUpLimit is the limit because scaleUpLimit < maxReplicas with user policies",
         (1, 2000), 3, 1000, 4, up=rules(0, 0, 1, 60)),
    # Skipped upstream (testThis), consistent all the same: 20 pods a minute at most.
    Rate(W + "scaleDownLimit is the limit because scaleDownLimit > minReplicas with user defined "
         "policies", (3, 2000), 1000, 3, 980, down=rules(20, 60)),
    Rate(UP + "default behavior", K, 10, 50, 20),
    Rate(UP + "pods policy larger than percent policy", K, 10, 500, 110,
         up=rules(100, 60, 100, 60)),
    Rate(UP + "percent policy larger than pods policy", K, 10, 500, 20, up=rules(2, 60, 100, 60)),
    Rate(UP + MAXP + "pod policy", K, 10, 50, 50, up=rules(100, 60)),
    Rate(UP + MAXP + "percent policy", K, 10, 50, 50, up=rules(10000, 60)),
    Rate(UP + "pod policy limitation", K, 10, 50, 40, up=rules(30, 60)),
    Rate(UP + "percent policy limitation", K, 10, 50, 30, up=rules(0, 0, 200, 60)),
    Rate(DOWN + "percent policy larger than pod policy", K, 100, 2, 80,
         down=rules(20, 60, 1, 60, 300)),
    Rate(DOWN + "pod policy larger than percent policy", K, 100, 2, 98,
         down=rules(2, 60, 1, 60, 300)),
    Rate(DOWN + NIL, K, 10, 0, 1, down=rules(100, 60, window=300)),
    Rate(DOWN + MINP + "pod policy", K, 10, 0, 1, down=rules(100, 60, window=300)),
    Rate(DOWN + MINP + "percent policy", (5, 1000), 10, 2, 5, down=rules(0, 0, 100, 60, 300)),
    Rate(DOWN + "pod policy limitation", K, 10, 2, 5, down=rules(5, 60, window=300)),
    Rate(DOWN + "percent policy limitation", K, 10, 5, 5, down=rules(0, 0, 50, 60, 300)),
    Rate(UP + MAXP + "pod policy and events", (1, 200), 100, 500, 200, up=rules(300, 60),
         ups=(1, 5, 9)),
    Rate(UP + MAXP + "percent policy and events", (1, 200), 100, 500, 200,
         up=rules(0, 0, 10000, 60), ups=(1, 5, 9)),
    # 120 s ago there were 85 pods; +5 from there is fewer than now: stay.
    Rate(UP + "currentReplicas limitation with rate.PeriodSeconds with a lot of recent scale up "
         "events", K, 100, 500, 100, up=rules(5, 120), ups=(1, 5, 9)),
    Rate(UP + "pod policy and previous scale up events", K, 100, 500, 235, up=rules(150, 120),
         ups=(1, 5, 9)),
    Rate(UP + "percent policy and previous scale up events", K, 100, 500, 255,
         up=rules(0, 0, 200, 120), ups=(1, 5, 9)),
    Rate(UP + "percent policy and previous scale up and down events", K, 6, 24, 16,
         up=rules(0, 0, 300, 300), ups=(4,), downs=(2,)),
    Rate(DOWN + "default policy" + EV, K, 10, 5, 5, downs=(1, 5, 9)),
    Rate(DOWN + NIL + EV, K, 100, 0, 1, down=rules(115, 120, window=300), downs=(1, 5, 9)),
    Rate(DOWN + MINP + "pod policy" + EV, (5, 1000), 100, 0, 5, down=rules(130, 120, window=300),
         downs=(1, 5, 9)),
    Rate(DOWN + MINP + "percent policy" + EV, (5, 1000), 100, 2, 5,
         down=rules(0, 0, 100, 120, 300), downs=(1, 5, 9)),
    Rate(DOWN + "pod policy limitation" + EV, K, 100, 2, 100, down=rules(5, 120, window=300),
         downs=(1, 5, 9)),
    Rate(DOWN + "percent policy limitation" + EV, K, 100, 0, 56, down=rules(0, 0, 50, 120, 300),
         downs=(2, 4, 6)),
    Rate(DOWN + "percent policy and previous scale up and down events", K, 10, 1, 6,
         down=rules(0, 0, 50, 180), ups=(2,), downs=(4,)),
    Rate(DOWN + "previous events preventing further scale down", K, 100, 0, 100,
         down=rules(0, 0, 10, 120, 300), downs=(10, 10, 10)),
    Rate(DOWN + "with previous events still allowing more scale down", K, 10, 5, 5,
         down=rules(0, 0, 1000, 120, 300), downs=(10, 10, 10)),
    Rate(W + "check 'outdated' flag for events for one behavior for up", K, 100, 200, 200,
         up=rules(1000, 60), ups=(8, 12, 9, 11)),
    Rate(OUT + "not marked" + TWO + "up", K, 100, 200, 200, up=rules(1000, 120, 100, 60),
         ups=(8, 12, 9, 11)),
    Rate(OUT + "marked" + TWO + "up", K, 100, 200, 200, up=rules(1000, 30, 100, 60),
         ups=(8, 12, 9, 11)),
    Rate(W + "check 'outdated' flag for events for one behavior for down", K, 100, 5, 5,
         down=rules(1000, 60, window=300), downs=(8, 12, 9, 11)),
    Rate(OUT + "not marked" + TWO + "down", K, 100, 5, 5, down=rules(1000, 120, 100, 60, 300),
         downs=(8, 12, 9, 11)),
    Rate(OUT + "marked" + TWO + "down", K, 100, 5, 5, down=rules(1000, 30, 100, 60, 300),
         downs=(8, 12, 9, 11)),
]  # fmt: skip


@pytest.mark.parametrize("case", RATES, ids=lambda c: c.upstream)
def test_rate_limits(case: Rate) -> None:
    spec = HpaSpec(case.bounds[0], case.bounds[1], 1.0, scale_up=case.up, scale_down=case.down)
    hpa = Hpa(
        spec,
        scale_up_events=spread(case.ups) if case.ups else [],
        scale_down_events=spread(case.downs) if case.downs else [],
    )
    assert hpa.limit_rate(NOW, case.current, case.desired) == case.expected


def test_translated_case_count() -> None:
    """The counts docs/simulate.md quotes: 153 cases from 82 upstream test functions."""
    functions = 4 + 1 + 1 + 5 + 11  # the parametrised and single normalisation tests
    several = 1  # TestGroupPods/several pods
    cases = len(CALCULATOR) + len(GROUPING) + several + len(PASSES) + len(RATES) + functions
    assert cases == 153
    names = {c.upstream.split("/")[0] for c in [*CALCULATOR, *PASSES]}
    assert len(names) + 1 + 6 == 82  # + TestGroupPods + six normalisation functions
