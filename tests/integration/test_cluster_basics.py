"""The dev cluster is a real one: real versions, kwok node pools with the right labels."""

from __future__ import annotations

from collections import Counter
from typing import Any

from servingopt.devcluster import DevCluster, Kubectl
from servingopt.devcluster.pools import load_pools

GPU_POOLS = {
    "gpu-t4": ("g4dn.xlarge", "Tesla-T4"),
    "gpu-a10g": ("g5.xlarge", "NVIDIA-A10G"),
    "gpu-v100": ("p3.2xlarge", "Tesla-V100-SXM2-16GB"),
}
CPU_POOLS = {"cpu-c6i": "c6i.xlarge", "cpu-c6i-2x": "c6i.2xlarge"}


def _nodes(kubectl: Kubectl) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kubectl.json("get", "nodes")["items"]
    return items


def test_kubectl_and_server_report_the_real_version(admin_kubectl: Kubectl) -> None:
    version = admin_kubectl.json("version")
    assert version["clientVersion"]["gitVersion"] == "v1.36.3"
    assert version["serverVersion"]["gitVersion"] == "v1.36.3"


def test_every_pool_has_on_demand_and_spot_nodes_in_several_zones(
    admin_kubectl: Kubectl,
) -> None:
    nodes = _nodes(admin_kubectl)
    pool_set = load_pools()
    per_pool = Counter(
        (n["metadata"]["labels"]["servingopt.io/pool"],
         n["metadata"]["labels"]["karpenter.sh/capacity-type"])
        for n in nodes
    )  # fmt: skip
    for pool in pool_set.pools:
        for capacity_type in ("on-demand", "spot"):
            assert per_pool[(pool.name, capacity_type)] == pool.nodes
    zones = {n["metadata"]["labels"]["topology.kubernetes.io/zone"] for n in nodes}
    assert zones == {"us-east-1a", "us-east-1b", "us-east-1c"}


def test_gpu_nodes_have_gpu_capacity_product_label_and_taint(admin_kubectl: Kubectl) -> None:
    for node in _nodes(admin_kubectl):
        labels = node["metadata"]["labels"]
        pool = labels["servingopt.io/pool"]
        taints = node["spec"].get("taints", [])
        gpu_taint = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
        if pool in GPU_POOLS:
            instance_type, product = GPU_POOLS[pool]
            assert labels["node.kubernetes.io/instance-type"] == instance_type
            assert labels["nvidia.com/gpu.product"] == product
            assert node["status"]["allocatable"]["nvidia.com/gpu"] == "1"
            assert gpu_taint in taints
        else:
            assert labels["node.kubernetes.io/instance-type"] == CPU_POOLS[pool]
            assert "nvidia.com/gpu" not in node["status"]["allocatable"]
            assert gpu_taint not in taints


def test_nodes_are_kwok_managed_ready_and_sized_from_the_instance_data(
    admin_kubectl: Kubectl,
) -> None:
    node = admin_kubectl.json("get", "node", "gpu-v100-spot-0")
    assert node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
    ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
    assert ready[0]["status"] == "True"
    # p3.2xlarge: 8 vCPU, 61 GiB; allocatable is capacity less kubelet reservations.
    assert node["status"]["capacity"]["cpu"] == "8"
    assert node["status"]["capacity"]["memory"] == "61Gi"
    assert node["status"]["allocatable"]["cpu"] == "7910m"


def test_status_reports_every_component_alive(dev_cluster: DevCluster) -> None:
    status = dev_cluster.status()
    expected = {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}
    assert expected <= set(status["components"])
    assert all(c["alive"] for c in status["components"].values())
    assert status["totalRssMiB"] > 0
