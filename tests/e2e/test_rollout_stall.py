"""A rollout that cannot finish is rolled back, on the real control plane: the catalog
puts every pool but the V100 one on nodes that do not exist, so the new pods stay
Pending (Unschedulable) while the old ones keep serving within the SLO."""

from __future__ import annotations

import json
import time

import yaml
from e2e_support import ROOT, ScriptedSource, modelserving, workload

from servingopt.controller.reconcile import Deps, reconcile
from servingopt.devcluster import DevCluster, Kubectl, wait_until
from servingopt.kube.client import Credentials, KubeClient

DEPLOY = "resnet50-classifier"


def catalog_without_nodes(name: str) -> dict[str, object]:
    """The default catalog with every pool but gpu-v100 renamed to one no node is in."""
    doc = yaml.safe_load((ROOT / "deploy/catalog/default-instancecatalog.yaml").read_text())
    doc["metadata"] = {"name": name}
    for itype in doc["spec"]["instanceTypes"]:
        if itype["pool"] != "gpu-v100":
            itype["pool"] = f"{itype['pool']}-nonodes"
    return dict(doc)


def remembered_good(kubectl: Kubectl) -> str | None:
    annotations = kubectl.json("get", "ms", DEPLOY)["metadata"].get("annotations") or {}
    state = json.loads(annotations.get("servingopt.io/state", "{}"))
    good = (state.get("guard") or {}).get("last_good") or {}
    return good.get("instance_type")


def pending(kubectl: Kubectl) -> list[str]:
    pods = kubectl.json("get", "pods", "-l", f"app.kubernetes.io/name={DEPLOY}")["items"]
    return [p["metadata"]["name"] for p in pods if p["status"].get("phase") == "Pending"]


async def test_a_rollout_stuck_on_a_pool_without_nodes_is_rolled_back(
    kubectl: Kubectl, admin_kubectl: Kubectl, policy: str, dev_cluster: DevCluster
) -> None:
    admin_kubectl.apply(catalog_without_nodes(policy))
    patch = {
        "spec": {
            "catalogRef": {"name": policy},
            "guardrails": {"rollback": {"rolloutTimeoutSeconds": 30}},
        }
    }
    admin_kubectl.run("patch", "servingpolicy", policy, "--type=merge", "-p", json.dumps(patch))
    kubectl.apply(workload())
    ms = modelserving(policy)
    candidates = ms["spec"]["candidates"]
    candidates["pools"] = [p if p == "gpu-v100" else f"{p}-nonodes" for p in candidates["pools"]]
    kubectl.apply(ms)
    wait_until(
        lambda: kubectl.json("get", "deployment", DEPLOY)["status"].get("readyReplicas") == 3,
        60,
        "the workload on V100",
    )
    source = ScriptedSource(time.time())  # the V100 pods meet the 40 ms SLO (p99 10 ms)
    outcomes: list[str] = []
    async with KubeClient(Credentials.load(str(dev_cluster.kubeconfig))) as kube:
        deps = Deps(
            kube=kube, source_for=lambda _u: source, default_prometheus_url="http://127.0.0.1:1"
        )

        async def once() -> str:
            outcomes.append((await reconcile(deps, kubectl.json("get", "ms", DEPLOY))).outcome)
            return outcomes[-1]

        assert await once() == "Applied"
        pool = kubectl.json("get", "deployment", DEPLOY)["spec"]["template"]["spec"][
            "nodeSelector"
        ]["servingopt.io/pool"]
        assert pool.endswith("-nonodes")
        wait_until(lambda: pending(kubectl), 30, "a new pod Pending on a pool without nodes")
        started = time.time()
        while await once() != "RolledBack":
            # the old pods keep the p99 at 10 ms: that never makes the new config good
            assert remembered_good(kubectl) == "p3.2xlarge"
            assert time.time() - started < 90, outcomes
            time.sleep(3)
        stalled_after = time.time() - started
        rolled_back = kubectl.json("get", "ms", DEPLOY)["status"]
        # The stalled configuration is not retried: while the rollback's own rollout is
        # in flight the guard holds for that, then for the recent rollback.
        deadline = time.time() + 60
        while True:
            assert await once() != "Applied", outcomes
            held = {c["type"]: c for c in kubectl.json("get", "ms", DEPLOY)["status"]["conditions"]}
            if held["Optimized"]["reason"] != "RolloutInProgress" or time.time() > deadline:
                break
            time.sleep(2)

    template = kubectl.json("get", "deployment", DEPLOY)["spec"]["template"]["spec"]
    assert template["nodeSelector"]["servingopt.io/pool"] == "gpu-v100"
    degraded = {c["type"]: c for c in rolled_back["conditions"]}["Degraded"]
    assert degraded["status"] == "True" and degraded["reason"] == "RolloutStalled"
    assert "Pending for" in degraded["message"] and "Unschedulable" in degraded["message"]
    assert rolled_back["history"][0]["action"] == "RolledBack"
    assert held["Optimized"]["reason"] == "RecentlyRolledBack", held["Optimized"]
    events = kubectl.json("get", "events", "--field-selector", "reason=RolledBack")["items"]
    assert events and events[0]["type"] == "Warning" and "stalled" in events[0]["message"]
    wait_until(lambda: not pending(kubectl), 60, "the Pending pods gone after the rollback")
    assert 30 <= stalled_after < 60, (stalled_after, outcomes)
    print(f"rolled back {stalled_after:.0f} s after the first Pending pod; {outcomes}")
