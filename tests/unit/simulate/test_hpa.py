"""The HPA emulation against hand-worked cases from the Kubernetes documentation.

Sources: "Horizontal Pod Autoscaling" — *Algorithm details* (ratio, tolerance, not-yet-ready
and missing pods) and *Configurable scaling behavior* (policies, periods, selectPolicy,
stabilisation windows, defaults); the controller's source where the documentation is
silent. Cases translated from the controller's own tests: ``test_hpa_upstream.py``.
"""

from __future__ import annotations

from collections import deque

import pytest

from servingopt.simulate.hpa import (
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    Hpa,
    HpaSpec,
    ObservedPod,
    PodMetrics,
    ScalingPolicy,
    ScalingRules,
    group_pods,
    metric_replicas,
    rules_from_behavior,
)


def pods(count: int, value: float) -> PodMetrics:
    return PodMetrics([value] * count)


def test_ratio_doubles_and_halves_replicas() -> None:
    # "if the current metric value is 200m, and the desired value is 100m, the number of
    # replicas will be doubled ... if the current value is instead 50m, you'll halve"
    assert metric_replicas(4, pods(4, 200), 100) == 8
    assert metric_replicas(4, pods(4, 50), 100) == 2


def test_ratio_is_rounded_up() -> None:
    # desiredReplicas = ceil[currentReplicas * (currentMetricValue / desiredMetricValue)]
    assert metric_replicas(3, pods(3, 130), 100) == 4  # ceil(3.9)


@pytest.mark.parametrize(
    ("value", "expected"), [(108, 10), (92, 10), (110, 10), (90, 10), (111, 12), (89, 9)]
)
def test_tolerance_of_ten_percent(value: float, expected: int) -> None:
    # "skips any scaling action if the ratio is sufficiently close to 1.0 (0.1 by default)"
    assert metric_replicas(10, pods(10, value), 100) == expected


def test_not_yet_ready_pods_count_as_zero_when_scaling_up() -> None:
    # Two ready pods at 150 (target 100) and two still starting: with the starting pods
    # at 0 the ratio is 300/400 = 0.75, which would reverse the direction: no action.
    assert metric_replicas(4, PodMetrics([150, 150], unready=2), 100) == 4
    # With the ready pods at 300 the conservative ratio is 600/400 = 1.5: ceil(1.5*4) = 6.
    assert metric_replicas(4, PodMetrics([300, 300], unready=2), 100) == 6


def test_unready_pods_do_not_hold_back_scale_down() -> None:
    # Not-yet-ready pods only matter when scaling up: 2 ready at 40 -> ceil(0.4 * 2) = 1.
    assert metric_replicas(4, PodMetrics([40, 40], unready=2), 100) == 1


def test_missing_metrics_assume_target_when_scaling_down() -> None:
    # 3 pods report 50, one has no sample: counted at 100 (the target) on the way down:
    # (150 + 100) / 400 = 0.625 -> ceil(0.625 * 4) = 3.
    assert metric_replicas(4, PodMetrics([50, 50, 50], missing=1), 100) == 3


def test_missing_pods_are_left_out_at_a_ratio_of_exactly_one() -> None:
    # Controller source: missing pods are filled only when the ratio is below or above 1.
    assert metric_replicas(4, PodMetrics([100, 100], missing=2), 100) == 4


def test_a_not_ready_pods_sample_counts_for_a_pods_metric_not_for_cpu() -> None:
    # A Running pod that is not ready (still loading, or failing its probe) but reports a
    # request rate is counted; for CPU its sample is set aside (start-up distorts it).
    pods = [ObservedPod(300.0), ObservedPod(0.0, ready=False, started=-30, ready_changed=-30)]
    by_rate = group_pods(pods, 0.0, cpu=False)
    assert (list(by_rate.values), by_rate.unready) == ([300.0, 0.0], 0)
    assert metric_replicas(2, by_rate, 100) == 3  # 150 per pod: ceil(1.5 x 2)
    by_cpu = group_pods(pods, 0.0, cpu=True)
    assert (list(by_cpu.values), by_cpu.unready) == ([300.0], 1)


def test_cpu_missing_pods_count_at_their_whole_request_on_the_way_down() -> None:
    # Resource utilisation: a pod without a sample is taken at 100 % (not the 50 % target)
    # when scaling down: (20 + 20 + 100) / 3 = 46 % of a 50 % target, within tolerance.
    metrics = PodMetrics([20, 20], missing=1)
    assert metric_replicas(3, metrics, 50, metric="Resource") == 3
    assert metric_replicas(3, metrics, 50, metric="Pods") == 2  # at the target: 30 -> ceil(1.8)


def test_cpu_utilisation_is_whole_percent() -> None:
    # 110.6 % is 110 % to the controller: inside a 10 % tolerance of a 100 % target.
    assert metric_replicas(10, pods(10, 110.6), 100, metric="Resource") == 10
    assert metric_replicas(10, pods(10, 110.6), 100) == 12


def test_a_new_hpa_does_not_scale_down_within_its_first_window() -> None:
    # The first sync records the current count: for 300 s it is the highest recommendation.
    hpa = Hpa(HpaSpec(1, 100, 100))
    for t in range(0, 300, 15):
        assert hpa.sync(t, 10, pods(10, 20)) == 10
    assert hpa.sync(300, 10, pods(10, 20)) == 2
    # A controller that already knows the HPA (a restart keeps nothing, so only a test) does.
    assert Hpa(HpaSpec(1, 100, 100), recommendations=deque()).sync(0, 10, pods(10, 20)) == 2


def test_without_behavior_scale_up_is_capped_at_double_or_four() -> None:
    # No spec.behavior: max(2 x current, 4) per pass, not max(current + 4, 2 x current).
    legacy = Hpa(HpaSpec(1, 100, 10, has_behavior=False))
    assert legacy.sync(0, 1, pods(1, 1000)) == 4
    assert legacy.sync(15, 4, pods(4, 1000)) == 8
    assert Hpa(HpaSpec(1, 100, 10)).sync(0, 1, pods(1, 1000)) == 5


def test_no_metrics_keeps_current() -> None:
    hpa = Hpa(HpaSpec(1, 10, 100))
    assert hpa.sync(0, 5, PodMetrics([])) == 5


def test_default_scale_up_doubles_or_adds_four_every_15_seconds() -> None:
    # Default scaleUp: Pods 4 / 15 s and Percent 100 / 15 s, selectPolicy Max.
    hpa = Hpa(HpaSpec(1, 100, 10))
    assert hpa.sync(0, 1, pods(1, 1000)) == 5  # max(1 + 4, 2 * 1)
    assert hpa.sync(15, 5, pods(5, 1000)) == 10  # max(5 + 4, 2 * 5)
    assert hpa.sync(30, 10, pods(10, 1000)) == 20
    assert hpa.sync(45, 20, pods(20, 1000)) == 40


def test_scale_up_rate_counts_changes_inside_the_period() -> None:
    # Percent 100 per 60 s: replicas at the start of the period can at most double.
    rules = ScalingRules(0, (ScalingPolicy("Percent", 100, 60),))
    hpa = Hpa(HpaSpec(1, 100, 10, scale_up=rules))
    assert hpa.sync(0, 2, pods(2, 1000)) == 4
    assert hpa.sync(15, 4, pods(4, 1000)) == 4  # still the same 60 s period: 2 -> 4 max
    assert hpa.sync(61, 4, pods(4, 1000)) == 8


def test_default_scale_down_waits_for_the_stabilisation_window() -> None:
    # scaleDown: 300 s window: the highest recommendation of the last 5 minutes wins.
    hpa = Hpa(HpaSpec(1, 100, 100))
    for t in range(0, 60, 15):
        assert hpa.sync(t, 10, pods(10, 100)) == 10  # recommendation 10
    # Load halves at t=60: recommendation 5, but 10 was recommended within 300 s.
    for t in range(60, 345, 15):
        assert hpa.sync(t, 10, pods(10, 50)) == 10
    # The last recommendation of 10 was at t=45; after t=345 it has left the window.
    assert hpa.sync(360, 10, pods(10, 50)) == 5


def test_documented_scale_down_policies_example() -> None:
    # Docs: Pods 4 / 60 s and Percent 10 / 60 s; with 80 replicas scaling towards 10,
    # 8 replicas go in the first step; at 72, 10 % is 7.2, rounded up to 8 -> 64.
    rules = ScalingRules(0, (ScalingPolicy("Pods", 4, 60), ScalingPolicy("Percent", 10, 60)), "Max")
    hpa = Hpa(HpaSpec(1, 100, 100, scale_down=rules))
    assert hpa.sync(0, 80, pods(80, 12.5)) == 72
    assert hpa.sync(15, 72, pods(72, 12.5)) == 72  # the 60 s period is used up
    assert hpa.sync(60, 72, pods(72, 12.5)) == 64
    # selectPolicy Min picks the policy allowing the smaller change: 4 pods.
    least = Hpa(HpaSpec(1, 100, 100, scale_down=ScalingRules(0, rules.policies, "Min")))
    assert least.sync(0, 80, pods(80, 12.5)) == 76


def test_disabled_scale_down() -> None:
    rules = ScalingRules(0, (ScalingPolicy("Percent", 100, 15),), "Disabled")
    hpa = Hpa(HpaSpec(1, 100, 100, scale_down=rules))
    assert hpa.sync(0, 10, pods(10, 10)) == 10


def test_scale_up_stabilisation_takes_the_lowest_recommendation() -> None:
    # scaleUp window 60 s: a recommendation of 4 at t=0 caps later higher ones until 60 s.
    rules = ScalingRules(60, DEFAULT_SCALE_UP.policies)
    hpa = Hpa(HpaSpec(1, 100, 100, scale_up=rules))
    assert hpa.sync(0, 4, pods(4, 100)) == 4
    assert hpa.sync(15, 4, pods(4, 200)) == 4
    assert hpa.sync(75, 4, pods(4, 200)) == 8


def test_min_and_max_clamps() -> None:
    hpa = Hpa(HpaSpec(2, 6, 100))
    assert hpa.sync(0, 9, pods(9, 1)) == 6  # above max: clamped, metrics ignored
    assert hpa.sync(15, 1, pods(1, 1)) == 2  # below min
    assert hpa.sync(30, 6, pods(6, 1000)) == 6  # max bounds the scale-up
    assert Hpa(HpaSpec(2, 6, 100)).sync(0, 0, pods(0, 1)) == 0  # scaled to zero: disabled


def test_behavior_object_parsing_keeps_defaults() -> None:
    rules = rules_from_behavior({"stabilizationWindowSeconds": 60}, DEFAULT_SCALE_DOWN)
    assert rules.stabilization_window_seconds == 60
    assert rules.policies == DEFAULT_SCALE_DOWN.policies
    parsed = rules_from_behavior(
        {"policies": [{"type": "Pods", "value": 2, "periodSeconds": 30}], "selectPolicy": "Min"},
        DEFAULT_SCALE_UP,
    )
    assert parsed.policies == (ScalingPolicy("Pods", 2, 30),)
    assert parsed.select_policy == "Min"
    assert parsed.stabilization_window_seconds == 0
