"""What runs, for callers without a cluster (the replay, ``servingopt plan``): what the
operator would read back and what its pods cost.

The operator reads the running configuration back from the Deployment and its HPA
(``kube.manifests.observed_config``) and prices the pods on their nodes
(``controller.cost.current_cost``). A replay or a history CSV has no manifests to read:
these functions give the same values from what they know, and the replay-versus-
reconcile test (``tests/api/test_one_loop.py``) holds them to the operator's readers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace

from servingopt.api import InstanceCatalog, InstanceType, ModelServingSpec
from servingopt.api.modelserving import Resources
from servingopt.values import ServingConfig, held_target


def pod_share(itype: InstanceType, spec: ModelServingSpec) -> float:
    """The share of a node's price one replica pays, as ``controller.cost.pod_share``
    prices it: GPUs requested (one, as servingopt writes it) over the node's GPUs, else
    the larger of its CPU and memory requests over the node's allocatable (the spec's
    resources capped to one node, as servingopt writes them; the defaults when the spec
    leaves sizing to the Deployment)."""
    if itype.gpu is not None and itype.gpu.count > 0:
        return min(1.0, 1.0 / itype.gpu.count)
    res = spec.resources or Resources()
    cpu_m = (itype.vcpu - itype.system_reserved_cpu) * 1000
    mem_mi = (itype.memory_gi_b - itype.system_reserved_memory_gi_b) * 1024
    shares = []
    if cpu_m > 0:
        shares.append(max(1, min(res.cpu_millicores, int(cpu_m))) / cpu_m)
    if mem_mi > 0:
        shares.append(max(1, min(res.memory_mi_b, int(mem_mi))) / mem_mi)
    return min(1.0, max(shares, default=0.0))


def pod_hourly(
    catalog: InstanceCatalog, spec: ModelServingSpec, instance_type: str, capacity_type: str
) -> float | None:
    """$/h of one replica on a node of ``instance_type`` (None: not in the catalog)."""
    itype = catalog.by_name().get(instance_type)
    if itype is None:
        return None
    price = itype.hourly_price(capacity_type) or itype.on_demand_hourly
    return price * pod_share(itype, spec)


def running_hourly(
    catalog: InstanceCatalog,
    spec: ModelServingSpec,
    pods: Iterable[tuple[str, str, int]],
) -> float | None:
    """$/h of the pods on nodes, given as (instance type, capacity type, count); None
    when none could be priced (as the operator reports a workload without pods)."""
    total, priced = 0.0, 0
    for instance_type, capacity_type, count in pods:
        price = pod_hourly(catalog, spec, instance_type, capacity_type)
        if price is None or count <= 0:
            continue
        total += count * price
        priced += count
    return round(total, 9) if priced else None  # as controller.cost rounds it


def as_read_back(config: ServingConfig, spec: ModelServingSpec) -> ServingConfig:
    """``config`` as the operator reads it back once applied: the HPA target as the HPA
    holds it (a whole percent for CPU utilisation, six significant digits otherwise)."""
    target = config.scaling_target
    if target is None or not math.isfinite(target):
        return config
    held = held_target(target, utilization=spec.autoscaling.metric == "CPUUtilization")
    return config if held == target else replace(config, scaling_target=held)
