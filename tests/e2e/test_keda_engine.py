"""`autoscaling.engine: KEDA` end to end, with KEDA itself running: its operator and its
metrics API server, built from the `github.com/kedacore/keda/v2` module (v2.21.0) and
registered as the external metrics API.

One story: the operator owns a ScaledObject (no HPA of its own) with the planned bounds,
target, behavior and a Prometheus trigger on the operator's Prometheus; KEDA makes the
HPA from it, named as servingopt's would be, and the ModelServing reports that HPA's
health; demand surges and KEDA's HPA adds replicas (KEDA's operator runs the trigger's
query on the real Prometheus scraping the traffic twin), demand falls and it removes
them; switching the engine back to HPA replaces the ScaledObject with servingopt's HPA.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from e2e_support import Demand, Operator, PrometheusProxy, modelserving, workload_replicas

from servingopt.devcluster import DevCluster, Kubectl, wait_until
from servingopt.devcluster.twin import TrafficTwin

DEPLOY = "resnet50-classifier"
MAX_REPLICAS = 6


def scaled_objects(kubectl: Kubectl) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kubectl.json("get", "scaledobjects.keda.sh")["items"]
    return items


def hpas(kubectl: Kubectl) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kubectl.json("get", "hpa")["items"]
    return items


def condition(kubectl: Kubectl, kind: str) -> dict[str, Any]:
    status = kubectl.json("get", "modelserving", DEPLOY).get("status") or {}
    return next((c for c in status.get("conditions", []) if c["type"] == kind), {})


def replicas(kubectl: Kubectl) -> int:
    return workload_replicas(kubectl, DEPLOY)


def test_keda_scales_the_workload_from_the_scaled_object_servingopt_owns(
    keda: DevCluster,
    kubectl: Kubectl,
    namespace: str,
    policy: str,
    twin: TrafficTwin,
    demand: Demand,
    proxy: PrometheusProxy,
    operator: Operator,
    extra_nodes: Callable[[str], None],
) -> None:
    ms = modelserving(policy)
    ms["spec"]["autoscaling"] = {
        "engine": "KEDA",
        "minReplicas": 1,
        "maxReplicas": MAX_REPLICAS,
        "startupSeconds": 10,
        "scaleDownStabilizationSeconds": 30,
    }
    kubectl.apply(ms)

    # 1. The ScaledObject carries the plan; KEDA makes the HPA from it.
    status = wait_until(
        lambda: kubectl.json("get", "modelserving", DEPLOY).get("status", {}).get("applied"),
        180,
        "the operator to apply a plan",
    )
    (so,) = wait_until(lambda: scaled_objects(kubectl), 30, "the ScaledObject")
    owner = kubectl.json("get", "modelserving", DEPLOY)["metadata"]["uid"]
    assert so["metadata"]["ownerReferences"][0]["uid"] == owner
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
    target = float(trigger["metadata"]["threshold"])
    assert target == pytest.approx(status["targetPerReplica"], rel=0.01)
    assert spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    print("ScaledObject:", json.dumps(spec, indent=1)[:1500])

    (hpa,) = wait_until(lambda: hpas(kubectl), 60, "KEDA's HPA")
    assert hpa["metadata"]["name"] == DEPLOY  # named as servingopt's own would be
    assert hpa["metadata"]["ownerReferences"][0]["kind"] == "ScaledObject"
    assert hpa["spec"]["metrics"][0]["type"] == "External"
    try:
        health = wait_until(
            lambda: (c := condition(kubectl, "AutoscalerHealthy")).get("status") == "True" and c,
            180,
            "AutoscalerHealthy=True from KEDA's HPA",
        )
    except TimeoutError:
        print(
            kubectl.run("describe", "hpa", DEPLOY).stdout, condition(kubectl, "AutoscalerHealthy")
        )
        raise
    print("health:", health)
    pool = kubectl.json("get", "deployment", DEPLOY)["spec"]["template"]["spec"]["nodeSelector"]
    extra_nodes(pool["servingopt.io/pool"])
    low = int(spec["minReplicaCount"])
    wait_until(lambda: replicas(kubectl) == low, 180, f"KEDA's HPA to settle at {low}")

    # 2. A surge: KEDA's HPA scales out on the trigger's query.
    want = low + 2
    demand.rps = target * (want - 0.4)
    wait_until(lambda: replicas(kubectl) >= want, 240, f"KEDA to scale up to {want}")
    up = replicas(kubectl)
    print(f"KEDA scaled up {low} -> {up} at {demand.rps:.0f} req/s")

    # 3. Demand falls: it scales back in after the planned window.
    demand.rps = target * 0.3 * low
    wait_until(lambda: replicas(kubectl) == low, 300, f"KEDA to scale down to {low}")
    print(f"KEDA scaled down {up} -> {low}")

    # 4. Back to an HPA: servingopt's HPA replaces its ScaledObject (and KEDA's HPA).
    kubectl.run(
        "patch",
        "modelserving",
        DEPLOY,
        "--type=merge",
        "-p",
        '{"spec":{"autoscaling":{"engine":"HPA"}}}',
    )
    wait_until(
        lambda: (
            not scaled_objects(kubectl)
            and [h["metadata"].get("ownerReferences", [{}])[0].get("kind") for h in hpas(kubectl)]
            == ["ModelServing"]
        ),
        120,
        "servingopt's HPA in place of the ScaledObject",
    )
    (hpa,) = hpas(kubectl)
    assert hpa["spec"]["maxReplicas"] == status["replicas"]["max"]
    events = kubectl.json("get", "events", "--field-selector", "reason=AutoscalerSwitched")
    assert "autoscaling.engine is HPA" in events["items"][0]["message"]
