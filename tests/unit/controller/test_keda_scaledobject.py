"""The KEDA ScaledObject servingopt owns (engine KEDA): the HPA's bounds, target and
behavior in KEDA's shape, read back to the same configuration."""

from __future__ import annotations

import pytest
from ctl_fixtures import load_resnet, user_deployment
from test_manifests import BEHAVIOR, MS_META, T4, merge

from servingopt.api import InstanceCatalog
from servingopt.api.modelserving import ModelServingSpec
from servingopt.kube import manifests as m
from servingopt.kube.autoscaler_health import health
from servingopt.metrics.promql import preset

SOURCE = m.TriggerSource("http://prometheus.monitoring:9090", "sum(rate(x[60s]))")


def keda_spec(metric: str = "RequestsPerSecond") -> ModelServingSpec:
    spec = load_resnet().spec
    auto = spec.autoscaling.model_copy(update={"engine": "KEDA", "metric": metric})
    return spec.model_copy(update={"autoscaling": auto})


def test_the_scaled_object_carries_the_planned_hpa() -> None:
    body = m.scaled_object_apply({"metadata": MS_META}, keda_spec(), T4, SOURCE)
    spec = body["spec"]
    assert body["apiVersion"] == "keda.sh/v1alpha1" and body["kind"] == "ScaledObject"
    assert body["metadata"]["ownerReferences"][0]["uid"] == MS_META["uid"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (T4.min_replicas, T4.max_replicas)
    hpa_config = spec["advanced"]["horizontalPodAutoscalerConfig"]
    assert hpa_config["name"] == MS_META["name"]  # KEDA's HPA named as servingopt's would be
    assert hpa_config["behavior"] == T4.behavior_dict()
    (trigger,) = spec["triggers"]
    assert trigger == {
        "type": "prometheus",
        "metricType": "AverageValue",  # KEDA divides the summed demand by the replicas
        "metadata": {
            "serverAddress": SOURCE.prometheus_url,
            "query": SOURCE.query,
            "threshold": "85.5",
        },
    }


def test_cpu_scaling_is_a_cpu_trigger() -> None:
    body = m.scaled_object_apply({"metadata": MS_META}, keda_spec("CPUUtilization"), T4, SOURCE)
    assert body["spec"]["triggers"][0]["type"] == "cpu"


def test_read_back_as_the_hpa_it_stands_for(catalog: InstanceCatalog) -> None:
    spec = keda_spec()
    so = m.scaled_object_apply({"metadata": MS_META}, spec, T4, SOURCE)
    live = user_deployment()
    stored = merge(live, m.deployment_apply(live, spec, T4, catalog))
    read = m.observed_config(stored, m.hpa_view(so, None), spec, catalog, behavior_hint=BEHAVIOR)
    assert read == T4


def test_without_keda_running_its_health_is_not_reported_and_a_broken_one_is_failing() -> None:
    so = m.scaled_object_apply({"metadata": MS_META}, keda_spec(), T4, SOURCE)
    assert health(m.hpa_view(so, None)).status is None
    so["status"] = {
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "ScaledObjectCheckFailed",
                "message": "x",
            }
        ]
    }
    broken = health(m.hpa_view(so, None))
    assert broken.status is False and "not Ready" in broken.message


@pytest.mark.parametrize("name", ["generic", "triton", "kserve", "vllm"])
def test_every_preset_has_a_concurrency_query(name: str) -> None:
    query = preset(name).concurrency_query({"namespace": "ml", "deployment": "d"}, 60)
    assert query is not None and query.startswith("sum(rate(") and 'namespace="ml"' in query
