"""The planned on-demand/spot mix, enforced while the real HPA scales.

The policy lets at most 60 % of the replicas run on spot and keeps one on-demand. The
operator plans a spot mix for the sample at a demand that needs two replicas or more,
so it owns a CapacityMix: kube-controller-manager's HPA scales that object through its
scale subresource (reading each pod's request rate through the real prometheus-adapter),
and servingopt splits each total between the user's Deployment, pinned to on-demand
nodes, and its spot copy. Demand surges and falls; at every count the HPA sets, the two
Deployments hold the policy's split, and once the pods are up the kwok nodes they run
on carry it too: counted by the nodes' capacity-type label, not by servingopt.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from e2e_support import Demand, Operator, modelserving, pods_by_node_label
from kubernetes.utils.quantity import parse_quantity

from servingopt.api.instancecatalog import LABEL_CAPACITY_TYPE
from servingopt.devcluster import Kubectl, wait_until
from servingopt.devcluster import pools as pools_mod
from servingopt.devcluster.twin import TrafficTwin
from servingopt.values import split_replicas

DEPLOY = "resnet50-classifier"
SPOT_COPY = f"{DEPLOY}-spot"
MAX_SPOT_PERCENT = 60
ON_DEMAND_BASE = 1
MAX_REPLICAS = 8


def get(kubectl: Kubectl, kind: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = kubectl.json("get", kind, name)
    return obj


def exists(kubectl: Kubectl, kind: str, name: str) -> bool:
    return kubectl.run("get", kind, name, check=False).returncode == 0


def parts(kubectl: Kubectl) -> tuple[int, int, int]:
    """(total the HPA set on the CapacityMix, on-demand replicas, spot replicas)."""
    total = int(get(kubectl, "capacitymix", DEPLOY)["spec"]["replicas"])
    on_demand = int(get(kubectl, "deployment", DEPLOY)["spec"]["replicas"])
    spot = int(get(kubectl, "deployment", SPOT_COPY)["spec"]["replicas"])
    return total, on_demand, spot


def running_by_capacity(kubectl: Kubectl) -> dict[str, int]:
    """Running pods of both Deployments counted by their node's capacity-type label."""
    counts = pods_by_node_label(kubectl, DEPLOY, LABEL_CAPACITY_TYPE, "?")
    return {k: v for k, v in counts.items() if v}


def expected_pods(total: int) -> dict[str, int]:
    on_demand, spot = split_replicas(total, MAX_SPOT_PERCENT, ON_DEMAND_BASE)
    return {k: v for k, v in (("on-demand", on_demand), ("spot", spot)) if v}


class Watch:
    """Every (total, on-demand, spot) the Deployments held, sampled every second."""

    def __init__(self, kubectl: Kubectl) -> None:
        self.kubectl = kubectl
        self.seen: list[tuple[int, int, int]] = []

    def until(self, done: Callable[[tuple[int, int, int]], bool], timeout: float) -> None:
        started = time.monotonic()
        while True:
            now = parts(self.kubectl)
            if not self.seen or self.seen[-1] != now:
                self.seen.append(now)
            if done(now):
                return
            if time.monotonic() - started > timeout:
                raise AssertionError(f"gave up after {timeout:.0f} s: {self.seen}")
            time.sleep(1)

    def settled(self, timeout: float = 120) -> int:
        """Wait until the running pods are the split of the total; return the total."""
        total = parts(self.kubectl)[0]
        wait_until(
            lambda: running_by_capacity(self.kubectl) == expected_pods(total),
            timeout,
            f"pods on nodes as the split of {total}: {expected_pods(total)}",
        )
        return total


def test_the_spot_share_holds_at_every_count_the_hpa_sets(
    admin_kubectl: Kubectl,
    kubectl: Kubectl,
    policy: str,
    twin: TrafficTwin,
    demand: Demand,
    operator: Operator,
    extra_nodes: Callable[[str], None],
) -> None:
    spot_terms = {"maxPercent": MAX_SPOT_PERCENT, "onDemandBaseReplicas": ON_DEMAND_BASE}
    patch = json.dumps({"spec": {"spot": spot_terms}})
    admin_kubectl.run("patch", "servingpolicy", policy, "--type=merge", "-p", patch)
    demand.rps = 3500.0  # more than one replica of any pool serves at the SLO
    ms = modelserving(policy)
    ms["spec"]["autoscaling"] = {
        "minReplicas": 1,
        "maxReplicas": MAX_REPLICAS,
        "startupSeconds": 10,
        "scaleDownStabilizationSeconds": 30,
    }
    kubectl.apply(ms)

    # 1. The plan is a spot mix: a CapacityMix, the spot copy, an HPA scaling the mix.
    wait_until(lambda: exists(kubectl, "capacitymix", DEPLOY), 240, "the CapacityMix")
    mix = get(kubectl, "capacitymix", DEPLOY)
    assert mix["spec"]["maxSpotPercent"] == MAX_SPOT_PERCENT
    assert mix["spec"]["onDemandBaseReplicas"] == ON_DEMAND_BASE
    wait_until(lambda: exists(kubectl, "hpa", DEPLOY), 60, "the HPA")
    hpa = get(kubectl, "hpa", DEPLOY)
    assert hpa["spec"]["scaleTargetRef"]["kind"] == "CapacityMix"
    assert hpa["spec"]["maxReplicas"] == MAX_REPLICAS
    wait_until(
        lambda: any(
            c["type"] == "ScalingActive" and c["status"] == "True"
            for c in get(kubectl, "hpa", DEPLOY).get("status", {}).get("conditions", [])
        ),
        180,
        "the HPA to read the mix's pods through the adapter",
    )
    on_demand_pod = get(kubectl, "deployment", DEPLOY)["spec"]["template"]["spec"]
    spot_pod = get(kubectl, "deployment", SPOT_COPY)["spec"]["template"]["spec"]
    pool = on_demand_pod["nodeSelector"][pools_mod.POOL_LABEL]
    assert on_demand_pod["nodeSelector"][LABEL_CAPACITY_TYPE] == "on-demand"
    assert spot_pod["nodeSelector"][LABEL_CAPACITY_TYPE] == "spot"
    assert spot_pod["nodeSelector"][pools_mod.POOL_LABEL] == pool
    assert spot_pod["containers"][0]["image"] == on_demand_pod["containers"][0]["image"]
    extra_nodes(pool)
    (metric,) = hpa["spec"]["metrics"]
    target = float(parse_quantity(metric["pods"]["target"]["averageValue"]))
    watch = Watch(kubectl)
    watch.until(lambda p: p[1] + p[2] == p[0], 120)
    start = watch.settled()
    print(f"{pool}: target {target} req/s per pod; mix at {start}: {watch.seen}")

    # 2. A surge: the HPA raises the total, servingopt splits each count it sets.
    peak = min(MAX_REPLICAS, max(start + 2, 5))
    demand.rps = target * (peak - 0.4)
    watch.until(lambda p: p[0] >= peak and p[1] + p[2] == p[0], 240)
    up = watch.settled()
    print(f"scaled up to {up} at {demand.rps:.0f} req/s: {watch.seen}")

    # 3. Demand falls: the HPA lowers the total, the spot part goes first.
    demand.rps = target * 0.3
    watch.until(lambda p: p[0] <= start and p[1] + p[2] == p[0], 420)
    down = watch.settled()
    print(f"scaled down to {down}: {watch.seen}")

    # 4. The admin lowers the share: enforced at the next re-plan, no saving weighed.
    patch = json.dumps({"spec": {"spot": {"maxPercent": 30}}})
    admin_kubectl.run("patch", "servingpolicy", policy, "--type=merge", "-p", patch)
    wait_until(
        lambda: get(kubectl, "capacitymix", DEPLOY)["spec"]["maxSpotPercent"] == 30,
        120,
        "the CapacityMix to take the policy's new share",
    )

    def split_at_30() -> tuple[int, int, int] | None:
        now = parts(kubectl)
        return now if now[1:] == split_replicas(now[0], 30, ON_DEMAND_BASE) else None

    tightened = wait_until(split_at_30, 30, "the Deployments to hold the new split")
    print(f"at 30 % spot: {tightened}")

    # At every count the Deployments held, the policy's split; both parts were used.
    for total, on_demand, spot in watch.seen:
        assert spot * 100 <= MAX_SPOT_PERCENT * (on_demand + spot), watch.seen
        assert on_demand >= min(ON_DEMAND_BASE, on_demand + spot), watch.seen
        if on_demand + spot == total:
            assert (on_demand, spot) == split_replicas(total, MAX_SPOT_PERCENT, ON_DEMAND_BASE)
    assert tightened[2] * 100 <= 30 * tightened[0]
    assert len({t for t, _, _ in watch.seen}) >= 3, watch.seen
    assert max(s for _, _, s in watch.seen) >= 2, watch.seen
