"""Rollback on the real API server: a change followed by an SLO breach for the policy's
window returns the Deployment to the last configuration that met the SLO."""

from __future__ import annotations

import time

from e2e_support import ScriptedSource, modelserving, workload

from servingopt.controller.reconcile import Deps, reconcile
from servingopt.devcluster import DevCluster, Kubectl, wait_until
from servingopt.kube.client import Credentials, KubeClient
from servingopt.kube.manifests import rollout_in_flight

DEPLOY = "resnet50-classifier"


async def test_breach_after_a_change_rolls_back(
    kubectl: Kubectl, admin_kubectl: Kubectl, policy: str, dev_cluster: DevCluster
) -> None:
    admin_kubectl.run(
        "patch",
        "servingpolicy",
        policy,
        "--type=merge",
        "-p",
        '{"spec":{"guardrails":{"rollback":{"breachWindowSeconds":60}}}}',
    )
    kubectl.apply(workload())
    kubectl.apply(modelserving(policy))
    wait_until(
        lambda: kubectl.json("get", "deployment", DEPLOY)["status"].get("readyReplicas") == 3,
        60,
        "the workload on V100",
    )
    now = [time.time()]
    source = ScriptedSource(now[0])
    async with KubeClient(Credentials.load(str(dev_cluster.kubeconfig))) as kube:
        deps = Deps(
            kube=kube,
            source_for=lambda _u: source,
            clock=lambda: now[0],
            default_prometheus_url="http://127.0.0.1:1",
        )

        async def once(advance: float) -> str:
            now[0] += advance
            result = await reconcile(deps, kubectl.json("get", "modelserving", DEPLOY))
            return result.outcome

        assert await once(0) == "Applied"  # V100 met the SLO: it is the last good one
        pool = kubectl.json("get", "deployment", DEPLOY)["spec"]["template"]["spec"][
            "nodeSelector"
        ]["servingopt.io/pool"]
        assert pool != "gpu-v100"
        # the breach is judged once the new pods serve alone (not during the rollout)
        wait_until(
            lambda: not rollout_in_flight(kubectl.json("get", "deployment", DEPLOY)),
            90,
            "the rollout of the new configuration",
        )
        source.p99_ms = 80.0  # the new configuration breaks the 40 ms SLO
        assert await once(30) != "RolledBack"  # breach starts
        assert await once(40) != "RolledBack"  # 40 s < 60 s window
        assert await once(30) == "RolledBack"  # 70 s of breach after the change
        rollbacks = deps.metrics.rollbacks.labels(kubectl.namespace, DEPLOY)._value.get()
    template = kubectl.json("get", "deployment", DEPLOY)["spec"]["template"]["spec"]
    assert template["nodeSelector"]["servingopt.io/pool"] == "gpu-v100"
    env = {e["name"]: e.get("value") for e in template["containers"][0]["env"]}
    assert env["MODEL_PRECISION"] == "fp32"
    status = kubectl.json("get", "modelserving", DEPLOY)["status"]
    degraded = {c["type"]: c for c in status["conditions"]}["Degraded"]
    assert degraded["status"] == "True" and degraded["reason"] == "SLOBreachedAfterChange"
    assert status["history"][0]["action"] == "RolledBack"
    events = kubectl.json("get", "events", "--field-selector", "reason=RolledBack")["items"]
    assert events and events[0]["type"] == "Warning"
    assert rollbacks == 1
