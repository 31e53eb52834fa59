"""Portable pools on the real scheduler: servingopt's own apply (``io.apply_config``, as
the operator runs it) with a GKE- and an EKS-labelled catalog, on kwok nodes labelled
as those platforms label theirs. Spot pods must land on spot nodes, on-demand pods on
on-demand nodes, including on GKE where on-demand nodes carry no capacity label and
only the spot pool's taint keeps other pods off it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from servingopt.api import InstanceCatalog, ModelServing
from servingopt.api.instancecatalog import PLACEMENT_PRESETS
from servingopt.api.validation import load_one
from servingopt.devcluster import DevCluster, Kubectl, wait_until
from servingopt.devcluster import pools as pools_mod
from servingopt.kube import io
from servingopt.kube.client import Credentials, KubeClient, scoped
from servingopt.values import ServingConfig

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = load_one(ROOT / "deploy/catalog/default-instancecatalog.yaml", InstanceCatalog)
SAMPLE = load_one(ROOT / "samples/modelservings/resnet50-classifier.yaml", ModelServing).spec
DEPLOY = "resnet50-classifier"
FIRST_INDEX = {"GKE": 300, "EKS": 400}


def catalog(preset: str) -> InstanceCatalog:
    doc = DEFAULT.model_dump(by_alias=True, exclude_none=True)
    doc["spec"]["placement"] = {"preset": preset}
    return InstanceCatalog.model_validate(doc)


@pytest.fixture(params=["GKE", "EKS"])
def platform(request: pytest.FixtureRequest, admin_kubectl: Kubectl) -> Iterator[str]:
    """Two on-demand and two spot T4 nodes labelled (and tainted) as the platform does."""
    preset: str = request.param
    pool_set = pools_mod.load_pools()
    t4 = next(p for p in pool_set.pools if p.name == "gpu-t4")
    placement = PLACEMENT_PRESETS[preset]
    nodes = [
        pools_mod.node_manifest(t4, capacity, FIRST_INDEX[preset] + i, "us-east-1a", placement)
        for capacity in ("on-demand", "spot")
        for i in range(2)
    ]
    admin_kubectl.apply(nodes)
    yield preset
    names = [n["metadata"]["name"] for n in nodes]
    admin_kubectl.run("delete", "node", *names, "--timeout=60s", check=False)


def user_workload(preset: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(
        (ROOT / "samples/workloads/resnet50-classifier.yaml").read_text()
    )
    doc["spec"]["replicas"] = 2
    pool_label = PLACEMENT_PRESETS[preset].pool_label
    doc["spec"]["template"]["spec"]["nodeSelector"] = {pool_label: "gpu-v100"}  # none here
    return doc


def running_nodes(kubectl: Kubectl) -> list[dict[str, str]]:
    nodes = {
        n["metadata"]["name"]: n["metadata"]["labels"]
        for n in kubectl.json("get", "nodes")["items"]
    }
    pods = kubectl.json("get", "pods", "-l", f"app.kubernetes.io/name={DEPLOY}")["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    if any(p["status"].get("phase") != "Running" for p in live):
        return []
    return [nodes[p["spec"]["nodeName"]] for p in live]


@pytest.mark.parametrize("capacity", ["spot", "on-demand"])
async def test_pods_land_on_the_platforms_nodes_of_the_planned_capacity_type(
    dev_cluster: DevCluster, kubectl: Kubectl, platform: str, capacity: str
) -> None:
    cat = catalog(platform)
    placement = cat.placement
    kubectl.apply(user_workload(platform))
    config = ServingConfig("g4dn.xlarge", "gpu-t4", capacity, "int8", 1, 4, 16, 2000, 80.0)
    ns = kubectl.namespace
    assert ns is not None
    ms = {"metadata": {"name": "resnet", "namespace": ns, "uid": "u-1"}}
    async with KubeClient(Credentials.load(str(dev_cluster.kubeconfig))) as kube:
        await io.apply_config(scoped(kube, ns), ms, SAMPLE, config, cat)

    template = kubectl.json("get", "deployment", DEPLOY)["spec"]["template"]["spec"]
    assert "karpenter.sh" not in json.dumps(template)
    assert template["nodeSelector"][placement.pool_label] == "gpu-t4"
    on = wait_until(
        lambda: len(nodes := running_nodes(kubectl)) == 2 and nodes, 90, "2 pods Running"
    )
    for labels in on:
        assert labels[placement.pool_label] == "gpu-t4"
        assert placement.capacity_type_of(labels) == capacity, labels
        assert labels["kubernetes.io/hostname"].startswith(f"gpu-t4-{capacity}-")
    print(platform, capacity, template["nodeSelector"], template.get("tolerations"))
