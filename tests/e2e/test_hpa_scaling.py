"""The HPA servingopt owns, scaling for real: kube-controller-manager's HPA controller
reads each pod's request rate through the real prometheus-adapter (the custom metrics
API behind the API server's aggregation layer), fed by a real Prometheus scraping the
traffic twin's per-pod counters.

One story, in order: the operator moves the sample off the V100 pool and applies its
HPA; demand rises above anything in the history (a surge nobody forecast) and the HPA
adds replicas, which land on the chosen pool; demand falls and the HPA removes them,
no sooner than the planned stabilization window and no faster than the planned
policies allow; the adapter stops, and the ModelServing says the HPA is failing (a
condition and an Event) while the replica count holds; the adapter returns and so does
the HPA.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from e2e_support import Demand, Operator, modelserving, pods_by_node_label, workload_replicas
from kubernetes.utils.quantity import parse_quantity

from servingopt.devcluster import DevCluster, Kubectl, wait_until
from servingopt.devcluster import pools as pools_mod
from servingopt.devcluster.cluster import ADAPTER
from servingopt.devcluster.twin import TrafficTwin

DEPLOY = "resnet50-classifier"
SCALE_DOWN_WINDOW_S = 30
MAX_REPLICAS = 10


def hpa(kubectl: Kubectl) -> dict[str, Any]:
    obj: dict[str, Any] = kubectl.json("get", "hpa", DEPLOY)
    return obj


def hpa_condition(kubectl: Kubectl, kind: str) -> dict[str, Any]:
    conditions = hpa(kubectl).get("status", {}).get("conditions", [])
    return next((c for c in conditions if c["type"] == kind), {})


def ms_condition(kubectl: Kubectl, kind: str) -> dict[str, Any]:
    status = kubectl.json("get", "modelserving", DEPLOY).get("status") or {}
    return next((c for c in status.get("conditions", []) if c["type"] == kind), {})


def replicas(kubectl: Kubectl) -> int:
    return workload_replicas(kubectl, DEPLOY)


def event_reasons(kubectl: Kubectl) -> set[str]:
    items = kubectl.json("get", "events", "--field-selector", "involvedObject.kind=ModelServing")
    return {e["reason"] for e in items["items"]}


def pods_by_pool(kubectl: Kubectl) -> dict[str, int]:
    """Running pods of the Deployment per node pool ('Pending' for unscheduled ones)."""
    return pods_by_node_label(kubectl, DEPLOY, pools_mod.POOL_LABEL, "?")


def allowed_scale_down(behavior: dict[str, Any], start: int) -> int:
    """Pods the HPA may remove within one period from ``start`` replicas (selectPolicy
    Max: the most generous policy), as kube-controller-manager computes it."""
    allowed = 0
    for policy in behavior["scaleDown"]["policies"]:
        if policy["type"] == "Pods":
            allowed = max(allowed, policy["value"])
        else:
            allowed = max(allowed, start - int(start * (1 - policy["value"] / 100)))
    return allowed


def watch_replicas(kubectl: Kubectl, until: int, timeout: float) -> list[tuple[float, int]]:
    """(seconds, replicas) at every change until replicas <= ``until``."""
    started = time.monotonic()
    seen = [(0.0, replicas(kubectl))]
    while seen[-1][1] > until:
        if time.monotonic() - started > timeout:
            raise AssertionError(f"replicas did not come down to {until}: {seen}")
        time.sleep(2)
        now = replicas(kubectl)
        if now != seen[-1][1]:
            seen.append((time.monotonic() - started, now))
    return seen


def test_the_hpa_scales_through_the_adapter_and_reports_its_failure(
    dev_cluster: DevCluster,
    kubectl: Kubectl,
    policy: str,
    twin: TrafficTwin,
    demand: Demand,
    operator: Operator,
    extra_nodes: Callable[[str], None],
) -> None:
    ms = modelserving(policy)
    ms["spec"]["autoscaling"] = {
        "minReplicas": 1,
        "maxReplicas": MAX_REPLICAS,
        "startupSeconds": 10,
        "scaleDownStabilizationSeconds": SCALE_DOWN_WINDOW_S,
    }
    kubectl.apply(ms)

    # 1. The operator applies its plan; the HPA reads the metric through the adapter.
    wait_until(lambda: kubectl.run("get", "hpa", DEPLOY, check=False).returncode == 0, 180, "HPA")
    wait_until(
        lambda: hpa_condition(kubectl, "ScalingActive").get("status") == "True",
        180,
        "the HPA to read requests_per_second through the adapter",
    )
    template = kubectl.json("get", "deployment", DEPLOY)["spec"]["template"]["spec"]
    pool = template["nodeSelector"][pools_mod.POOL_LABEL]
    assert pool != "gpu-v100"
    extra_nodes(pool)
    spec = hpa(kubectl)["spec"]
    (metric,) = spec["metrics"]
    assert metric["pods"]["metric"]["name"] == "requests_per_second"
    target = float(parse_quantity(metric["pods"]["target"]["averageValue"]))
    assert spec["maxReplicas"] == MAX_REPLICAS  # the bound, not the forecast
    behavior = spec["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == SCALE_DOWN_WINDOW_S
    low = int(spec["minReplicas"])
    wait_until(lambda: replicas(kubectl) == low, 180, f"the HPA to settle at {low}")
    print(f"{template['nodeSelector']}: target {target} req/s per pod, min {low}")

    # 2. A surge above anything seen: the HPA adds replicas on the chosen pool.
    want = low + 2
    assert want <= MAX_REPLICAS
    demand.rps = target * (want - 0.4)
    wait_until(lambda: replicas(kubectl) >= want, 180, f"the HPA to scale up to {want}")
    try:
        wait_until(
            lambda: pods_by_pool(kubectl) == {pool: replicas(kubectl)}, 120, f"pods on {pool}"
        )
    except TimeoutError:
        print(kubectl.run("get", "pods", "-o", "wide").stdout)
        raise
    up = replicas(kubectl)
    print(f"scaled up {low} -> {up} at {demand.rps:.0f} req/s")

    # 3. Demand falls: the HPA scales in after the window, at the planned pace.
    demand.rps = target * 0.3 * low
    steps = watch_replicas(kubectl, low, timeout=SCALE_DOWN_WINDOW_S + 60 * (up - low) + 120)
    print("scale-down steps (s, replicas):", steps)
    assert steps[1][0] >= SCALE_DOWN_WINDOW_S  # nothing before the stabilization window
    period = max(p["periodSeconds"] for p in behavior["scaleDown"]["policies"])
    for i in range(1, len(steps)):
        start = steps[i - 1][1]  # within one period of a removal, at most the allowance
        for t, n in steps[i:]:
            if t - steps[i][0] >= period - 3:
                break
            assert start - n <= allowed_scale_down(behavior, start), steps
    assert steps[-1][1] == low

    # 4. The custom metrics API goes away: the HPA holds, the ModelServing says why.
    held = replicas(kubectl)
    dev_cluster.stop_component(ADAPTER)
    try:
        failing = wait_until(
            lambda: (
                (c := ms_condition(kubectl, "AutoscalerHealthy")).get("status") == "False" and c
            ),
            150,
            "AutoscalerHealthy=False",
        )
        print("while the adapter is down:", failing)
        assert failing["reason"] == "FailedGetPodsMetric"
        assert "requests_per_second" in failing["message"]
        assert ms_condition(kubectl, "Degraded")["reason"] == "AutoscalerFailing"
        wait_until(lambda: "AutoscalerFailing" in event_reasons(kubectl), 30, "a Warning Event")
        assert replicas(kubectl) == held
    finally:
        dev_cluster.start_component(ADAPTER)
    wait_until(
        lambda: ms_condition(kubectl, "AutoscalerHealthy").get("status") == "True",
        150,
        "AutoscalerHealthy=True again",
    )
    wait_until(lambda: "AutoscalerRecovered" in event_reasons(kubectl), 30, "a Normal Event")
