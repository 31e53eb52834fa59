"""`autoscaling.engine: KEDA` end to end on the real API server with KEDA's own CRD: the
operator owns a ScaledObject (no HPA) carrying the planned bounds, target and behavior
and a Prometheus trigger on the operator's Prometheus; switching the engine back to HPA
replaces it with servingopt's HPA. No KEDA operator runs here, so no HPA is made from the
ScaledObject and its health is not reported (README, "Autoscaling in your cluster")."""

from __future__ import annotations

import json
from typing import Any

import pytest
from e2e_support import Exporter, Operator, PrometheusProxy, modelserving, workload

from servingopt.devcluster import Kubectl, wait_until

DEPLOY = "resnet50-classifier"


def scaled_objects(kubectl: Kubectl) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kubectl.json("get", "scaledobjects.keda.sh")["items"]
    return items


def hpas(kubectl: Kubectl) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kubectl.json("get", "hpa")["items"]
    return items


def condition(kubectl: Kubectl, kind: str) -> dict[str, Any]:
    status = kubectl.json("get", "modelserving", DEPLOY).get("status") or {}
    return next((c for c in status.get("conditions", []) if c["type"] == kind), {})


def test_the_operator_owns_a_scaled_object_instead_of_an_hpa(
    keda_crds: Kubectl,
    kubectl: Kubectl,
    namespace: str,
    policy: str,
    exporter: Exporter,
    proxy: PrometheusProxy,
    operator: Operator,
) -> None:
    kubectl.apply(workload())
    ms = modelserving(policy)
    ms["spec"]["autoscaling"]["engine"] = "KEDA"
    kubectl.apply(ms)

    status = wait_until(
        lambda: kubectl.json("get", "modelserving", DEPLOY).get("status", {}).get("applied"),
        180,
        "the operator to apply a plan",
    )
    (so,) = wait_until(lambda: scaled_objects(kubectl), 30, "the ScaledObject")
    owner = kubectl.json("get", "modelserving", DEPLOY)["metadata"]["uid"]
    assert so["metadata"]["ownerReferences"][0]["uid"] == owner
    assert hpas(kubectl) == []  # KEDA would make the HPA; servingopt makes none
    spec = so["spec"]
    assert spec["scaleTargetRef"]["name"] == DEPLOY
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (
        status["replicas"]["min"],
        status["replicas"]["max"],
    )
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "prometheus" and trigger["metricType"] == "AverageValue"
    assert trigger["metadata"]["serverAddress"] == proxy.url
    assert f'namespace="{namespace}"' in trigger["metadata"]["query"]
    # the status rounds to three significant digits
    assert float(trigger["metadata"]["threshold"]) == pytest.approx(
        status["targetPerReplica"], rel=0.01
    )
    assert spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    health = wait_until(lambda: condition(kubectl, "AutoscalerHealthy"), 90, "the next re-plan")
    assert (health["status"], health["reason"]) == ("Unknown", "NotReported"), health
    print("ScaledObject:", json.dumps(spec, indent=1)[:1500])

    # Back to an HPA: servingopt's HPA replaces its ScaledObject, nothing else is touched.
    kubectl.run(
        "patch",
        "modelserving",
        DEPLOY,
        "--type=merge",
        "-p",
        '{"spec":{"autoscaling":{"engine":"HPA"}}}',
    )
    wait_until(
        lambda: len(hpas(kubectl)) == 1 and not scaled_objects(kubectl),
        120,
        "the HPA in place of the ScaledObject",
    )
    (hpa,) = hpas(kubectl)
    assert hpa["spec"]["maxReplicas"] == status["replicas"]["max"]
    events = kubectl.json("get", "events", "--field-selector", "reason=AutoscalerSwitched")
    assert "autoscaling.engine is HPA" in events["items"][0]["message"]
