"""Portable pools: an InstanceCatalog with the EKS placement preset, on kwok nodes labelled
as EKS managed node groups label theirs. The operator must move the sample off its
V100 node group onto the cheaper one, with nothing in the pod template mentioning
Karpenter or servingopt's own pool label, and the pods must run there."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from e2e_support import ROOT, Exporter, Operator, modelserving, pods_by_node_label, workload

from servingopt.api.instancecatalog import PLACEMENT_PRESETS
from servingopt.demo import SAMPLE_WORKLOAD_RULES
from servingopt.devcluster import Kubectl, wait_until
from servingopt.devcluster import pools as pools_mod

EKS = PLACEMENT_PRESETS["EKS"]
DEPLOY = "resnet50-classifier"
TYPES = ("g4dn.xlarge", "g5.xlarge", "p3.2xlarge", "c6i.2xlarge")  # the sample's
GROUPS = ["gpu-t4", "gpu-v100"]  # the node groups this cluster has: the only candidates
NODES = {("gpu-v100", "on-demand"): 3, ("gpu-t4", "on-demand"): 4, ("gpu-t4", "spot"): 4}


@pytest.fixture
def eks_nodes(admin_kubectl: Kubectl) -> Iterator[list[str]]:
    pool_set = pools_mod.load_pools()
    by_name = {p.name: p for p in pool_set.pools}
    nodes = [
        pools_mod.node_manifest(by_name[pool], capacity, 200 + i, pool_set.zones[i % 3], EKS)
        for (pool, capacity), count in NODES.items()
        for i in range(count)
    ]
    admin_kubectl.apply(nodes)
    names = [n["metadata"]["name"] for n in nodes]
    yield names
    admin_kubectl.run("delete", "node", *names, "--timeout=60s", check=False)


@pytest.fixture
def eks_policy(installed: Kubectl, namespace: str) -> Iterator[str]:
    """An EKS-labelled catalog of the sample's instance types, and a policy using it."""
    default = yaml.safe_load((ROOT / "deploy/catalog/default-instancecatalog.yaml").read_text())
    catalog = copy.deepcopy(default)
    catalog["metadata"] = {"name": f"eks-{namespace}"}
    catalog["spec"]["instanceTypes"] = [
        t for t in default["spec"]["instanceTypes"] if t["name"] in TYPES
    ]
    catalog["spec"]["placement"] = {"preset": "EKS"}
    policy = {
        "apiVersion": "servingopt.io/v1alpha1",
        "kind": "ServingPolicy",
        "metadata": {"name": namespace},
        "spec": {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            "workload": SAMPLE_WORKLOAD_RULES,
            "replanIntervalSeconds": 30,
            "catalogRef": {"name": f"eks-{namespace}"},
            "guardrails": {"minSavingPercent": 10, "minIntervalSeconds": 600},
        },
    }
    installed.apply([catalog, policy])
    yield namespace
    installed.run("delete", "servingpolicy", namespace, "--wait=false", check=False)
    installed.run("delete", "instancecatalog", f"eks-{namespace}", "--wait=false", check=False)


def node_groups(kubectl: Kubectl) -> dict[str, int]:
    """Running pods per EKS node group (`-` on a node without the label)."""
    return pods_by_node_label(kubectl, DEPLOY, EKS.pool_label, "-")


def test_an_eks_catalog_moves_pods_between_eks_node_groups(
    kubectl: Kubectl,
    eks_nodes: list[str],
    eks_policy: str,
    exporter: Exporter,
    operator: Operator,
) -> None:
    deployment: dict[str, Any] = workload()
    pod = deployment["spec"]["template"]["spec"]
    pod["nodeSelector"] = {EKS.pool_label: "gpu-v100"}  # as an EKS user pins a node group
    kubectl.apply(deployment)
    wait_until(lambda: node_groups(kubectl) == {"gpu-v100": 3}, 90, "pods on the V100 group")
    ms = modelserving(eks_policy)
    ms["spec"]["candidates"]["pools"] = GROUPS
    kubectl.apply(ms)

    status = wait_until(
        lambda: kubectl.json("get", "modelserving", DEPLOY).get("status", {}).get("applied"),
        180,
        "the operator to apply a plan",
    )
    group = status["pool"]
    assert group == "gpu-t4"
    template = kubectl.json("get", "deployment", DEPLOY)["spec"]["template"]["spec"]
    capacity = {"on-demand": "ON_DEMAND", "spot": "SPOT"}[status["capacityType"]]
    assert template["nodeSelector"][EKS.pool_label] == group
    assert template["nodeSelector"][EKS.capacity_type_label] == capacity
    assert "karpenter.sh" not in json.dumps(template)
    assert "servingopt.io/pool" not in json.dumps(template)
    wait_until(
        lambda: set(node_groups(kubectl)) == {group}, 180, f"every pod Running on {group} nodes"
    )
    nodes = {
        n["metadata"]["name"]: n["metadata"]["labels"]
        for n in kubectl.json("get", "nodes")["items"]
    }
    pods = kubectl.json("get", "pods", "-l", f"app.kubernetes.io/name={DEPLOY}")["items"]
    for p in pods:
        if p["metadata"].get("deletionTimestamp"):
            continue
        labels = nodes[p["spec"]["nodeName"]]
        assert labels[EKS.capacity_type_label] == capacity
        assert p["spec"]["nodeName"] in eks_nodes
    print(f"{len(pods)} pods on EKS node group {group} ({capacity}); status {status}")
