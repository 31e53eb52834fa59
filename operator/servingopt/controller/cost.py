"""Cost accounting (pure): what the running pods cost, and the baseline savings compare to.

Current cost: each Running pod of the workload pays a share of its node's hourly
price. A pod that requests GPUs pays ``gpus requested / gpus on the node`` (GPUs count
whole: a GPU cannot be shared, and the rest of a GPU node is of little use to others);
any other pod pays ``max(cpu share, memory share)`` of the node's allocatable. The
price comes from the InstanceCatalog entry named by the node's instance-type label, at
the node's capacity type (spot or on-demand).

Baseline: the workload as servingopt first found it (price per replica and replica
count), scaled to today's demand: ``per-replica price x ceil(replicas x demand now /
demand then)``, both demands at three significant digits. Savings: ``1 - projected /
baseline``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from servingopt.api.instancecatalog import (
    LABEL_INSTANCE_TYPE,
    RESOURCE_GPU,
    InstanceCatalog,
)


def _qty(value: Any) -> float:
    try:
        return float(Decimal(parse_quantity(value)))  # type: ignore[no-untyped-call]
    except (ValueError, TypeError, ArithmeticError):
        return 0.0


def pod_requests(pod: Mapping[str, Any]) -> dict[str, float]:
    """Summed container requests (limits stand in for missing requests)."""
    total: dict[str, float] = {}
    for container in pod.get("spec", {}).get("containers") or []:
        resources = container.get("resources") or {}
        merged = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
        for name, value in merged.items():
            total[name] = total.get(name, 0.0) + _qty(value)
    return total


def node_price(node: Mapping[str, Any], catalog: InstanceCatalog) -> float | None:
    labels = node.get("metadata", {}).get("labels") or {}
    itype = catalog.by_name().get(labels.get(LABEL_INSTANCE_TYPE, ""))
    if itype is None:
        return None
    capacity = catalog.placement.capacity_type_of(labels) or "on-demand"
    return itype.hourly_price(capacity) or itype.on_demand_hourly


def pod_share(
    pod: Mapping[str, Any], node: Mapping[str, Any], gpu_resource: str = RESOURCE_GPU
) -> float:
    """The fraction of the node's price the pod pays (0..1)."""
    requests = pod_requests(pod)
    alloc = node.get("status", {}).get("allocatable") or {}
    node_gpus = _qty(alloc.get(gpu_resource, 0))
    gpus = requests.get(gpu_resource, 0.0)
    if gpus > 0 and node_gpus > 0:
        return min(1.0, math.ceil(gpus) / node_gpus)
    shares = []
    for name in ("cpu", "memory"):
        capacity = _qty(alloc.get(name, 0))
        if capacity > 0:
            shares.append(requests.get(name, 0.0) / capacity)
    return min(1.0, max(shares, default=0.0))


def running(pod: Mapping[str, Any]) -> bool:
    return bool(
        pod.get("status", {}).get("phase") == "Running" and pod.get("spec", {}).get("nodeName")
    )


@dataclass(frozen=True)
class CurrentCost:
    hourly: float | None  # None: no running pod could be priced
    running_pods: int
    unpriced_pods: int


def current_cost(
    pods: Iterable[Mapping[str, Any]],
    nodes: Mapping[str, Mapping[str, Any]],
    catalog: InstanceCatalog,
) -> CurrentCost:
    total, priced, unpriced = 0.0, 0, 0
    for pod in pods:
        if not running(pod):
            continue
        node = nodes.get(pod["spec"]["nodeName"])
        price = node_price(node, catalog) if node is not None else None
        if node is None or price is None:
            unpriced += 1
            continue
        total += price * pod_share(pod, node)
        priced += 1
    # Rounded far below any price: summed pod by pod here and count by count in the
    # replay (loop.running), the totals would otherwise differ in their last bit.
    return CurrentCost(round(total, 9) if priced else None, priced + unpriced, unpriced)


def _sig3(value: float) -> float:
    return float(f"{value:.3g}")


@dataclass(frozen=True)
class Baseline:
    """The workload as first observed."""

    hourly_per_replica: float
    replicas: int
    demand_rps: float | None = None

    def hourly_at(self, demand_rps: float | None) -> float:
        replicas = self.replicas
        if demand_rps is not None and self.demand_rps:
            # Both demands at three significant digits, as status shows them: measuring
            # noise around an unchanged demand (1500.02 against 1499.98 req/s) must not
            # add a replica to the baseline on every other pass.
            ratio = _sig3(demand_rps) / _sig3(self.demand_rps)
            replicas = max(1, math.ceil(self.replicas * ratio - 1e-9))
        return self.hourly_per_replica * replicas

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Baseline | None:
        try:
            return cls(
                hourly_per_replica=float(data["hourly_per_replica"]),
                replicas=int(data["replicas"]),
                demand_rps=float(data["demand_rps"])
                if data.get("demand_rps") is not None
                else None,
            )
        except (KeyError, TypeError, ValueError):
            return None


def first_baseline(cost: CurrentCost, demand_rps: float | None) -> Baseline | None:
    if cost.hourly is None or cost.running_pods == 0 or cost.unpriced_pods:
        return None
    return Baseline(cost.hourly / cost.running_pods, cost.running_pods, demand_rps)


@dataclass(frozen=True)
class CostReport:
    current_hourly: float | None
    projected_hourly: float | None
    baseline_hourly: float | None
    per_million_requests: float | None
    savings_ratio: float | None


def report(
    current: CurrentCost,
    projected_hourly: float | None,
    baseline: Baseline | None,
    demand_rps: float | None,
) -> CostReport:
    baseline_hourly = baseline.hourly_at(demand_rps) if baseline is not None else None
    savings = None
    if baseline_hourly and projected_hourly is not None:
        savings = 1.0 - projected_hourly / baseline_hourly
    per_million = None
    if projected_hourly is not None and demand_rps and demand_rps > 0:
        per_million = projected_hourly / (demand_rps * 3600) * 1e6
    return CostReport(current.hourly, projected_hourly, baseline_hourly, per_million, savings)


def status_spend(status: Mapping[str, Any]) -> float:
    """$/h a ModelServing stands for, from its status: the larger of what its pods cost
    now and what servingopt last applied to it (a rollout may not have caught up)."""
    current = (status.get("cost") or {}).get("currentHourly")
    applied = (status.get("applied") or {}).get("hourlyCost")
    values = [float(v) for v in (current, applied) if isinstance(v, int | float)]
    return max([v for v in values if math.isfinite(v) and v >= 0] or [0.0])
