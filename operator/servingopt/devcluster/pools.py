"""Fake node pools: a declarative YAML turned into kwok-managed Node objects."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from servingopt.api.instancecatalog import PLACEMENT_PRESETS, ResolvedPlacement

MAX_PODS = 110
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT = {"key": GPU_RESOURCE, "value": "true", "effect": "NoSchedule"}
POOL_LABEL = "servingopt.io/pool"
KARPENTER = PLACEMENT_PRESETS["Karpenter"]


@dataclass(frozen=True)
class Gpu:
    product: str
    count: int
    memory_mib: int


@dataclass(frozen=True)
class Pool:
    name: str
    instance_type: str
    vcpus: int
    memory_gib: float
    capacity_types: tuple[str, ...]
    nodes: int
    gpu: Gpu | None = None


@dataclass(frozen=True)
class PoolSet:
    pools: tuple[Pool, ...]
    zones: tuple[str, ...] = field(default=("us-east-1a",))


def default_pools_path() -> Path:
    return Path(str(resources.files("servingopt.devcluster") / "pools.yaml"))


def load_pools(path: Path | None = None, nodes_per_pool: int | None = None) -> PoolSet:
    """Reads a pools YAML; `nodes_per_pool` overrides every pool's node count."""
    doc = yaml.safe_load((path or default_pools_path()).read_text())
    pools = tuple(_parse_pool(p, nodes_per_pool) for p in doc["pools"])
    return PoolSet(pools=pools, zones=tuple(doc.get("zones") or ("us-east-1a",)))


def _parse_pool(raw: dict[str, Any], nodes_per_pool: int | None) -> Pool:
    gpu_raw = raw.get("gpu")
    gpu = None
    if gpu_raw:
        gpu = Gpu(str(gpu_raw["product"]), int(gpu_raw["count"]), int(gpu_raw["memoryMiB"]))
    return Pool(
        name=str(raw["name"]),
        instance_type=str(raw["instanceType"]),
        vcpus=int(raw["vcpus"]),
        memory_gib=float(raw["memoryGiB"]),
        capacity_types=tuple(raw.get("capacityTypes") or ("on-demand",)),
        nodes=int(nodes_per_pool if nodes_per_pool is not None else raw.get("nodes", 3)),
        gpu=gpu,
    )


def reserved_cpu_millis(vcpus: int) -> int:
    """kube-reserved CPU as EKS computes it: 6% of core 1, 1% of core 2, 0.5% of cores 3-4,
    0.25% of the rest."""
    shares = [60.0, 10.0, 5.0, 5.0]
    return math.ceil(sum(shares[i] if i < len(shares) else 2.5 for i in range(vcpus)))


def allocatable(pool: Pool) -> dict[str, str]:
    """What a kubelet would report: capacity less kube-reserved and the eviction threshold."""
    memory_mib = int(pool.memory_gib * 1024) - (255 + 11 * MAX_PODS) - 100
    out = {
        "cpu": f"{pool.vcpus * 1000 - reserved_cpu_millis(pool.vcpus)}m",
        "memory": f"{memory_mib}Mi",
        "pods": str(MAX_PODS),
        "ephemeral-storage": "100Gi",
    }
    if pool.gpu:
        out[GPU_RESOURCE] = str(pool.gpu.count)
    return out


def capacity(pool: Pool) -> dict[str, str]:
    out = {
        "cpu": str(pool.vcpus),
        "memory": f"{int(pool.memory_gib * 1024)}Mi",
        "pods": str(MAX_PODS),
        "ephemeral-storage": "100Gi",
    }
    if pool.gpu:
        out[GPU_RESOURCE] = str(pool.gpu.count)
    return out


def node_labels(
    pool: Pool,
    capacity_type: str,
    zone: str,
    name: str,
    placement: ResolvedPlacement = KARPENTER,
) -> dict[str, str]:
    """A node's labels as the platform of ``placement`` sets them (Karpenter's by
    default: ``karpenter.sh/capacity-type`` and ``servingopt.io/pool``)."""
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": pool.instance_type,
        "topology.kubernetes.io/region": zone[:-1],
        "topology.kubernetes.io/zone": zone,
        placement.pool_label: pool.name,
        **placement.capacity_labels(capacity_type),
        "type": "kwok",
    }
    if pool.gpu:
        labels["nvidia.com/gpu.product"] = pool.gpu.product
        labels["nvidia.com/gpu.count"] = str(pool.gpu.count)
        labels["nvidia.com/gpu.memory"] = str(pool.gpu.memory_mib)
    return labels


def node_manifest(
    pool: Pool,
    capacity_type: str,
    index: int,
    zone: str,
    placement: ResolvedPlacement = KARPENTER,
) -> dict[str, Any]:
    name = f"{pool.name}-{capacity_type}-{index}"
    spec: dict[str, Any] = {}
    taints = [dict(GPU_TAINT)] if pool.gpu else []
    if capacity_type == "spot":  # the platform's own spot taints (GKE as advised, AKS)
        taints += [t.model_dump(exclude_none=True) for t in placement.spot_taints]
    if taints:
        spec["taints"] = taints
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": node_labels(pool, capacity_type, zone, name, placement),
            "annotations": {KWOK_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": spec,
        "status": {"capacity": capacity(pool), "allocatable": allocatable(pool)},
    }


def node_manifests(pool_set: PoolSet) -> list[dict[str, Any]]:
    """All nodes of all pools, spread round-robin over the zones."""
    out = []
    for pool in pool_set.pools:
        for capacity_type in pool.capacity_types:
            for i in range(pool.nodes):
                zone = pool_set.zones[i % len(pool_set.zones)]
                out.append(node_manifest(pool, capacity_type, i, zone))
    return out
