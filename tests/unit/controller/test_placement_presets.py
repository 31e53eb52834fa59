"""Portable pools: the catalog's placement preset decides which node labels (and spot
taints) select a pool and a capacity type; nothing assumes Karpenter."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ctl_fixtures import load_catalog, load_resnet, user_deployment
from test_manifests import merge

from servingopt.api import InstanceCatalog
from servingopt.controller.cost import node_price
from servingopt.kube import manifests as m
from servingopt.values import ServingConfig

T4_SPOT = ServingConfig("g4dn.xlarge", "gpu-t4", "spot", "int8", 1, 4, 8, 2000, 100.0)
T4_ON_DEMAND = ServingConfig("g4dn.xlarge", "gpu-t4", "on-demand", "int8", 1, 4, 8, 2000, 100.0)


def catalog_for(preset: str, **fields: Any) -> InstanceCatalog:
    doc = load_catalog().model_dump(by_alias=True, exclude_none=True)
    doc["spec"]["placement"] = {"preset": preset, **fields}
    return InstanceCatalog.model_validate(doc)


def pod_of(catalog: InstanceCatalog, config: ServingConfig) -> dict[str, Any]:
    body = m.deployment_apply(user_deployment(), load_resnet().spec, config, catalog)
    pod: dict[str, Any] = body["spec"]["template"]["spec"]
    return pod


@pytest.mark.parametrize(
    ("preset", "spot", "on_demand"),
    [
        (
            "EKS",
            {"eks.amazonaws.com/nodegroup": "gpu-t4", "eks.amazonaws.com/capacityType": "SPOT"},
            {
                "eks.amazonaws.com/nodegroup": "gpu-t4",
                "eks.amazonaws.com/capacityType": "ON_DEMAND",
            },
        ),
        (
            "GKE",
            {"cloud.google.com/gke-nodepool": "gpu-t4", "cloud.google.com/gke-spot": "true"},
            {"cloud.google.com/gke-nodepool": "gpu-t4"},
        ),
        (
            "AKS",
            {
                "kubernetes.azure.com/agentpool": "gpu-t4",
                "kubernetes.azure.com/scalesetpriority": "spot",
            },
            {"kubernetes.azure.com/agentpool": "gpu-t4"},
        ),
    ],
)
def test_each_platform_is_selected_by_its_own_labels(
    preset: str, spot: dict[str, str], on_demand: dict[str, str]
) -> None:
    catalog = catalog_for(preset)
    for config, labels in ((T4_SPOT, spot), (T4_ON_DEMAND, on_demand)):
        pod = pod_of(catalog, config)
        selector = pod["nodeSelector"]
        assert {k: v for k, v in selector.items() if k in catalog.placement.keys} == labels
        assert selector["node.kubernetes.io/instance-type"] == "g4dn.xlarge"
        assert "karpenter.sh" not in json.dumps(pod) and "servingopt.io/pool" not in selector
        # read back as applied: no endless re-apply, no false "Overwritten"
        stored = merge(user_deployment(), {"spec": {"template": {"spec": pod}}})
        read = m.observed_config(stored, None, load_resnet().spec, catalog)
        assert (read.pool, read.capacity_type) == (config.pool, config.capacity_type)


@pytest.mark.parametrize(
    ("preset", "taint"),
    [("GKE", "cloud.google.com/gke-spot"), ("AKS", "kubernetes.azure.com/scalesetpriority")],
)
def test_spot_pods_tolerate_the_platforms_spot_taint_and_on_demand_pods_do_not(
    preset: str, taint: str
) -> None:
    catalog = catalog_for(preset)
    spot = {t["key"] for t in pod_of(catalog, T4_SPOT)["tolerations"]}
    on_demand = {t["key"] for t in pod_of(catalog, T4_ON_DEMAND)["tolerations"]}
    assert taint in spot and taint not in on_demand
    assert "nvidia.com/gpu" in spot & on_demand  # the pool's own taint, either way


def test_the_default_is_karpenter_as_before() -> None:
    selector = pod_of(load_catalog(), T4_SPOT)["nodeSelector"]
    assert selector["karpenter.sh/capacity-type"] == "spot"
    assert selector["servingopt.io/pool"] == "gpu-t4"


def test_fields_override_the_preset() -> None:
    catalog = catalog_for("EKS", poolLabel="example.com/pool", spotValue="spot-capacity")
    selector = pod_of(catalog, T4_SPOT)["nodeSelector"]
    assert selector["example.com/pool"] == "gpu-t4"
    assert selector["eks.amazonaws.com/capacityType"] == "spot-capacity"


@pytest.mark.parametrize(
    ("preset", "labels", "capacity"),
    [
        ("EKS", {"eks.amazonaws.com/capacityType": "SPOT"}, "spot"),
        ("EKS", {"eks.amazonaws.com/capacityType": "ON_DEMAND"}, "on-demand"),
        ("GKE", {"cloud.google.com/gke-spot": "true"}, "spot"),
        ("GKE", {}, "on-demand"),
        ("AKS", {"kubernetes.azure.com/scalesetpriority": "spot"}, "spot"),
    ],
)
def test_running_pods_are_priced_by_the_platforms_capacity_label(
    preset: str, labels: dict[str, str], capacity: str
) -> None:
    catalog = catalog_for(preset)
    t4 = catalog.by_name()["g4dn.xlarge"]
    node = {"metadata": {"labels": {"node.kubernetes.io/instance-type": "g4dn.xlarge", **labels}}}
    assert node_price(node, catalog) == t4.hourly_price(capacity)
