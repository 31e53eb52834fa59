"""The namespace budget is computed from the cluster: a fresh operator process (no
memory at all) sees what the namespace's other ModelServings spend, from their status."""

from __future__ import annotations

import json
import time

from e2e_support import ScriptedSource, modelserving, workload

from servingopt.controller.reconcile import Deps, reconcile
from servingopt.devcluster import DevCluster, Kubectl, wait_until
from servingopt.kube.client import Credentials, KubeClient

DEPLOY = "resnet50-classifier"


def sibling(policy: str) -> dict[str, object]:
    doc = modelserving(policy, mode="Recommend")
    doc["metadata"] = {"name": "sibling"}
    doc["spec"]["targetRef"] = {"name": "not-deployed"}  # type: ignore[index]
    return doc


def set_spend(kubectl: Kubectl, hourly: float) -> None:
    status = {"status": {"cost": {"currentHourly": hourly}}}
    kubectl.run(
        "patch", "ms", "sibling", "--subresource=status", "--type=merge", "-p", json.dumps(status)
    )


async def test_a_restarted_operator_keeps_the_namespace_budget(
    kubectl: Kubectl, admin_kubectl: Kubectl, policy: str, dev_cluster: DevCluster
) -> None:
    budget = {"spec": {"budgets": {"maxHourlyCostPerNamespace": 100}}}
    admin_kubectl.run("patch", "servingpolicy", policy, "--type=merge", "-p", json.dumps(budget))
    kubectl.apply(workload())
    kubectl.apply(sibling(policy))
    kubectl.apply(modelserving(policy))
    wait_until(
        lambda: kubectl.json("get", "deployment", DEPLOY)["status"].get("readyReplicas") == 3,
        60,
        "the workload on V100",
    )
    set_spend(kubectl, 99.5)  # the sibling already spends nearly all of the budget
    now = time.time()
    source = ScriptedSource(now)

    async def fresh_process() -> str:
        """One reconcile by a brand-new operator: a new client, new Deps, no memory."""
        async with KubeClient(Credentials.load(str(dev_cluster.kubeconfig))) as kube:
            deps = Deps(
                kube=kube,
                source_for=lambda _u: source,
                clock=lambda: now,
                default_prometheus_url="http://127.0.0.1:1",
            )
            result = await reconcile(deps, kubectl.json("get", "modelserving", DEPLOY))
            return result.outcome

    assert await fresh_process() == "Refused"
    assert await fresh_process() == "Refused"  # restarted: still refused
    status = kubectl.json("get", "modelserving", DEPLOY)["status"]
    optimized = {c["type"]: c for c in status["conditions"]}["Optimized"]
    assert optimized["reason"] == "BudgetExceeded"
    assert "above its budget of $100.00/h" in optimized["message"]
    template = kubectl.json("get", "deployment", DEPLOY)["spec"]["template"]["spec"]
    assert template["nodeSelector"]["servingopt.io/pool"] == "gpu-v100"  # nothing applied

    set_spend(kubectl, 0.0)  # the sibling scaled away: the same change now fits
    assert await fresh_process() == "Applied"
