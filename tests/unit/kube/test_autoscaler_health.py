"""The owned HPA's health, read from the conditions the HPA controller writes."""

from __future__ import annotations

from typing import Any

from servingopt.kube.autoscaler_health import health


def hpa(*conditions: tuple[str, str, str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": "resnet"},
        "status": {
            "conditions": [
                {"type": t, "status": s, "reason": r, "message": m} for t, s, r, m in conditions
            ]
        },
    }


ABLE = ("AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size")
ACTIVE = ("ScalingActive", "True", "ValidMetricFound", "the HPA was able to compute")
NOT_SERVED = (
    "ScalingActive",
    "False",
    "FailedGetPodsMetric",
    "the HPA was unable to compute the replica count: unable to get metric "
    "requests_per_second: unable to fetch metrics from custom metrics API",
)


def test_a_metric_the_api_does_not_serve_is_a_failure_named_as_the_hpa_names_it() -> None:
    h = health(hpa(ABLE, NOT_SERVED))
    assert h.status is False and h.reason == "FailedGetPodsMetric"
    assert "unable to get metric requests_per_second" in h.message
    assert "holds its replica count" in h.message


def test_unable_to_scale_is_a_failure() -> None:
    h = health(hpa(("AbleToScale", "False", "FailedGetScale", "no scale subresource"), ACTIVE))
    assert (h.status, h.reason) == (False, "FailedGetScale")


def test_active_is_healthy_and_a_clamp_at_the_maximum_is_said() -> None:
    assert health(hpa(ABLE, ACTIVE)).as_condition()[:2] == ("True", "ValidMetricFound")
    limited = ("ScalingLimited", "True", "TooManyReplicas", "the desired replica count is more")
    assert health(hpa(ABLE, ACTIVE, limited)).reason == "AtMaxReplicas"
    at_min = ("ScalingLimited", "True", "TooFewReplicas", "the desired replica count is less")
    assert health(hpa(ABLE, ACTIVE, at_min)).reason == "ValidMetricFound"


def test_a_new_hpa_without_conditions_is_unknown() -> None:
    assert health({"metadata": {"name": "x"}}).as_condition()[0] == "Unknown"
