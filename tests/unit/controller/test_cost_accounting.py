"""Cost accounting: node price shares of running pods, baseline and savings."""

from __future__ import annotations

from typing import Any

import pytest

from servingopt.api import InstanceCatalog
from servingopt.controller.cost import Baseline, current_cost, first_baseline, pod_share, report


def node(
    name: str, itype: str, capacity: str, cpu: str, memory: str, gpus: int = 0
) -> dict[str, Any]:
    alloc = {"cpu": cpu, "memory": memory}
    if gpus:
        alloc["nvidia.com/gpu"] = str(gpus)
    labels = {"node.kubernetes.io/instance-type": itype, "karpenter.sh/capacity-type": capacity}
    return {"metadata": {"name": name, "labels": labels}, "status": {"allocatable": alloc}}


def pod(node_name: str, phase: str = "Running", **requests: str) -> dict[str, Any]:
    return {
        "spec": {"nodeName": node_name, "containers": [{"resources": {"requests": requests}}]},
        "status": {"phase": phase},
    }


NODES = {
    "gpu": node("gpu", "p3.2xlarge", "on-demand", "7900m", "60Gi", gpus=1),
    "cpu": node("cpu", "c6i.2xlarge", "spot", "8", "16Gi"),
}


def test_gpu_pods_pay_whole_gpus() -> None:
    # 1 CPU of 7.9 but the node's only GPU: the whole node.
    assert pod_share(pod("gpu", cpu="1", **{"nvidia.com/gpu": "1"}), NODES["gpu"]) == 1.0


def test_cpu_pods_pay_their_largest_share() -> None:
    share = pod_share(pod("cpu", cpu="2", memory="8Gi"), NODES["cpu"])
    assert share == pytest.approx(0.5)  # memory 8/16 beats cpu 2/8


def test_current_cost_prices_running_pods_only(catalog: InstanceCatalog) -> None:
    pods = [
        pod("gpu", cpu="3", **{"nvidia.com/gpu": "1"}),
        pod("cpu", cpu="4", memory="4Gi"),
        pod("cpu", phase="Pending", cpu="4"),
        pod("elsewhere", cpu="1"),
    ]
    cost = current_cost(pods, NODES, catalog)
    p3 = catalog.by_name()["p3.2xlarge"].on_demand_hourly
    c6i_spot = catalog.by_name()["c6i.2xlarge"].spot_hourly
    assert c6i_spot is not None
    assert cost.hourly == pytest.approx(p3 + 0.5 * c6i_spot)
    assert (cost.running_pods, cost.unpriced_pods) == (3, 1)


def test_baseline_scales_with_demand() -> None:
    baseline = Baseline(hourly_per_replica=3.06, replicas=3, demand_rps=300.0)
    assert baseline.hourly_at(300.0) == pytest.approx(9.18)
    assert baseline.hourly_at(610.0) == pytest.approx(3.06 * 7)
    assert baseline.hourly_at(None) == pytest.approx(9.18)
    assert Baseline.from_dict(baseline.to_dict()) == baseline


def test_savings_against_the_baseline(catalog: InstanceCatalog) -> None:
    pods = [pod("gpu", cpu="3", **{"nvidia.com/gpu": "1"})] * 3
    cost = current_cost(pods, NODES, catalog)
    baseline = first_baseline(cost, 300.0)
    assert baseline is not None
    out = report(cost, projected_hourly=1.0, baseline=baseline, demand_rps=300.0)
    assert out.savings_ratio == pytest.approx(1 - 1.0 / (3 * 3.06))
    assert out.per_million_requests == pytest.approx(1.0 / (300 * 3600) * 1e6)
