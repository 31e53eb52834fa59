"""Autoscalers on the real control plane: the HPA servingopt owns comes back when deleted,
and a workload another autoscaler already scales (an HPA, a KEDA ScaledObject checked
against KEDA's own CRD) never gets a second one."""

from __future__ import annotations

import time
from typing import Any

import pytest
from e2e_support import Exporter, Operator, modelserving, workload

from servingopt.devcluster import Kubectl, wait_until

DEPLOY = "resnet50-classifier"


def ready(kubectl: Kubectl) -> dict[str, Any]:
    status = kubectl.json("get", "ms", DEPLOY).get("status") or {}
    conditions: dict[str, Any] = {c["type"]: c for c in status.get("conditions", [])}
    return conditions.get("Ready", {})


def test_a_deleted_owned_hpa_is_recreated_with_an_event(
    kubectl: Kubectl, policy: str, exporter: Exporter, operator: Operator
) -> None:
    kubectl.apply(workload())
    kubectl.apply(modelserving(policy))
    wait_until(lambda: kubectl.json("get", "hpa")["items"], 120, "the owned HPA")
    (first,) = kubectl.json("get", "hpa")["items"]
    kubectl.run("delete", "hpa", first["metadata"]["name"])
    deleted = time.time()
    wait_until(lambda: kubectl.json("get", "hpa")["items"], 60, "the HPA recreated")
    took = time.time() - deleted
    (again,) = kubectl.json("get", "hpa")["items"]
    assert again["metadata"]["uid"] != first["metadata"]["uid"]
    assert again["spec"] == first["spec"]  # as it was applied, not a new decision
    assert again["metadata"]["ownerReferences"][0]["kind"] == "ModelServing"
    events = kubectl.json("get", "events", "--field-selector", "reason=HpaRecreated")["items"]
    assert events and events[0]["type"] == "Warning"
    assert "was deleted; recreated as applied" in events[0]["message"]
    assert took < 30, took  # the deletion is watched: the next 10 s tick re-plans
    print(f"HPA recreated {took:.1f} s after its deletion")


def foreign_hpa() -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "team-hpa"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": DEPLOY},
            "minReplicas": 2,
            "maxReplicas": 5,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 60},
                    },
                }
            ],
        },
    }


def scaled_object() -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "team-keda"},
        "spec": {
            "scaleTargetRef": {"name": DEPLOY},
            "minReplicaCount": 1,
            "maxReplicaCount": 4,
            "triggers": [
                {
                    "type": "prometheus",
                    "metadata": {
                        "serverAddress": "http://prometheus.monitoring:9090",
                        "query": "sum(rate(serving_requests_total[1m]))",
                        "threshold": "100",
                    },
                }
            ],
        },
    }


@pytest.mark.parametrize("other", ["hpa", "scaledobject"])
def test_a_workload_another_autoscaler_scales_gets_no_second_one(
    kubectl: Kubectl,
    keda_crds: Kubectl,
    policy: str,
    exporter: Exporter,
    operator: Operator,
    other: str,
) -> None:
    kubectl.apply(workload())
    name = "HPA team-hpa" if other == "hpa" else "ScaledObject team-keda"
    kubectl.apply(foreign_hpa() if other == "hpa" else scaled_object())
    before = kubectl.json("get", "deployment", DEPLOY)["metadata"]["generation"]
    kubectl.apply(modelserving(policy))
    wait_until(lambda: ready(kubectl).get("reason") == "ForeignAutoscaler", 60, "the condition")
    assert ready(kubectl)["status"] == "False"
    assert f"{name} already scales Deployment {DEPLOY}" in ready(kubectl)["message"]
    time.sleep(20)  # two more re-plan ticks: still nothing written
    hpas = {h["metadata"]["name"] for h in kubectl.json("get", "hpa")["items"]}
    assert hpas == ({"team-hpa"} if other == "hpa" else set())
    assert kubectl.json("get", "deployment", DEPLOY)["metadata"]["generation"] == before
