"""A spot mix: the split rule, the CapacityMix and the spot copy servingopt builds."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from servingopt.api import InstanceCatalog, ModelServingSpec
from servingopt.api.instancecatalog import LABEL_CAPACITY_TYPE
from servingopt.kube import manifests as m
from servingopt.optimize.instances import Pricing, cost_spot_mix
from servingopt.values import ServingConfig, SpotShare, split_replicas

PERCENT = st.integers(0, 100)
BASE = st.integers(0, 20)
TOTAL = st.integers(0, 500)


@given(TOTAL, PERCENT, BASE)
def test_the_spot_share_and_the_base_hold_at_every_total(total: int, pct: int, base: int) -> None:
    on_demand, spot = split_replicas(total, pct, base)
    assert on_demand + spot == total
    assert on_demand >= min(total, base)
    assert spot * 100 <= pct * total  # never above the policy's share


@given(TOTAL, PERCENT, BASE)
def test_one_more_replica_moves_each_part_by_at_most_one(total: int, pct: int, base: int) -> None:
    """So scaling by one step never takes a replica from the other part."""
    od0, spot0 = split_replicas(total, pct, base)
    od1, spot1 = split_replicas(total + 1, pct, base)
    assert (od1 - od0, spot1 - spot0) in ((1, 0), (0, 1))


@given(st.lists(TOTAL, min_size=1, max_size=20), PERCENT, BASE)
def test_the_planner_prices_the_split_the_operator_applies(
    totals: list[int], pct: int, base: int
) -> None:
    ones = np.ones(len(totals))
    pricing = Pricing(ones, ones * 0.4, np.ones(len(totals), dtype=np.int64), ones * 0, ones, ones)
    mix = cost_spot_mix(np.array(totals, dtype=np.int64), pricing, pct, base)
    split = [split_replicas(n, pct, base) for n in totals]
    assert mix.on_demand_replicas.tolist() == [od for od, _ in split]
    assert mix.spot_replicas.tolist() == [s for _, s in split]


def test_only_a_spot_config_with_an_on_demand_part_is_a_mix() -> None:
    assert ServingConfig(capacity_type="spot").spot_share() is None
    assert ServingConfig(capacity_type="on-demand", max_spot_percent=50).spot_share() is None
    share = ServingConfig(capacity_type="spot", max_spot_percent=50, on_demand_base=1)
    assert share.spot_share() == SpotShare(50, 1)
    assert not SpotShare(100, 0).mixed and SpotShare(100, 1).mixed and SpotShare(99, 0).mixed


MS: dict[str, Any] = {"metadata": {"name": "resnet", "namespace": "ml", "uid": "u-1"}}
CATALOG = InstanceCatalog.model_validate(
    {
        "metadata": {"name": "c"},
        "spec": {
            "currency": "USD",
            "instanceTypes": [
                {
                    "name": "c6i.xlarge",
                    "pool": "cpu",
                    "vcpu": 4,
                    "memoryGiB": 8,
                    "onDemandHourly": 0.17,
                    "spotHourly": 0.07,
                }
            ],
        },
    }
)
SPEC = ModelServingSpec.model_validate(
    {
        "targetRef": {"name": "resnet"},
        "slo": {"latencyP99Ms": 100},
        "variants": [
            {
                "name": "fp32",
                "accuracy": 0.76,
                "profiles": [
                    {"instanceType": "c6i.xlarge", "points": [{"batchSize": 1, "latencyMs": 20}]}
                ],
            }
        ],
        "resources": {"cpuMillicores": 2000, "memoryMiB": 4096},
        "autoscaling": {"minReplicas": 1, "maxReplicas": 10},
    }
)
MIXED = ServingConfig(
    instance_type="c6i.xlarge",
    pool="cpu",
    capacity_type="spot",
    min_replicas=1,
    max_replicas=10,
    scaling_target=40.0,
    max_spot_percent=50,
    on_demand_base=1,
)
LIVE: dict[str, Any] = {
    "metadata": {"name": "resnet", "namespace": "ml", "resourceVersion": "5", "uid": "d-1"},
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "resnet"}},
        "strategy": {"type": "RollingUpdate"},
        "template": {
            "metadata": {"labels": {"app": "resnet"}, "annotations": {"team": "vision"}},
            "spec": {
                "serviceAccountName": "resnet",
                "nodeSelector": {"disk": "ssd"},
                "containers": [
                    {
                        "name": "server",
                        "image": "resnet:1",
                        "env": [{"name": "USER_VAR", "value": "kept"}],
                    }
                ],
            },
        },
    },
}


def test_the_autoscaler_of_a_mix_scales_the_capacity_mix() -> None:
    hpa = m.hpa_apply(MS, SPEC, MIXED)
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "servingopt.io/v1alpha1",
        "kind": "CapacityMix",
        "name": "resnet",
    }
    plain = m.hpa_apply(MS, SPEC, ServingConfig(**{**MIXED.to_dict(), "max_spot_percent": None}))
    assert plain["spec"]["scaleTargetRef"]["kind"] == "Deployment"
    assert m.targets_deployment(hpa, "resnet", "resnet")
    assert not m.targets_deployment(hpa, "resnet")  # without a mix of its own: not ours


def test_the_capacity_mix_leaves_replicas_to_the_autoscaler() -> None:
    body = m.mix_apply(MS, SPEC, SpotShare(30, 2))
    assert "replicas" not in body["spec"]
    assert body["spec"] == {
        "onDemandDeployment": "resnet",
        "spotDeployment": "resnet-spot",
        "maxSpotPercent": 30,
        "onDemandBaseReplicas": 2,
    }
    assert body["metadata"]["ownerReferences"][0]["uid"] == "u-1"


def test_the_spot_copy_is_the_users_template_on_spot_with_its_own_selector() -> None:
    live = copy.deepcopy(LIVE)
    body = m.spot_deployment_apply(live, MS, SPEC, MIXED, CATALOG, "server")
    assert live == LIVE  # the live object is not changed
    assert body["metadata"]["name"] == "resnet-spot"
    assert body["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert "replicas" not in body["spec"]
    selector = body["spec"]["selector"]["matchLabels"]
    labels = body["spec"]["template"]["metadata"]["labels"]
    assert selector == {"app": "resnet", m.LABEL_CAPACITY_PART: "spot"}
    assert labels == selector  # its pods also match the user's selector (the Service's)
    pod = body["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "resnet"
    assert pod["nodeSelector"]["disk"] == "ssd"
    assert pod["nodeSelector"][LABEL_CAPACITY_TYPE] == "spot"
    (container,) = pod["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["USER_VAR"] == "kept"
    assert container["resources"]["requests"]["cpu"]
    assert body["spec"]["strategy"] == {"type": "RollingUpdate"}


def test_a_mix_reads_back_as_the_spot_config_it_was_applied_as() -> None:
    on_demand = m.deployment_apply(
        LIVE, SPEC, ServingConfig(**{**MIXED.to_dict(), "capacity_type": "on-demand"}), CATALOG
    )
    live = copy.deepcopy(LIVE)
    live["spec"]["template"]["spec"]["nodeSelector"] = on_demand["spec"]["template"]["spec"][
        "nodeSelector"
    ]
    mix = m.mix_apply(MS, SPEC, SpotShare(50, 1))
    read = m.observed_config(live, m.hpa_apply(MS, SPEC, MIXED), SPEC, CATALOG, mix=mix)
    assert read.spot_share() == SpotShare(50, 1)
    assert read.capacity_type == "spot"
    assert read.placement() == MIXED.placement()


def test_two_deployments_read_as_one_workload() -> None:
    def dep(replicas: int, ready: int, gen: int = 2, seen: int = 2) -> dict[str, Any]:
        return {
            "metadata": {"name": "d", "generation": gen},
            "spec": {"replicas": replicas},
            "status": {
                "observedGeneration": seen,
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": ready,
            },
        }

    both = m.combined([dep(2, 2), dep(3, 1)])
    assert both["spec"]["replicas"] == 5
    assert both["status"]["readyReplicas"] == 3
    assert not m.rollout_in_flight(both)
    assert m.rollout_in_flight(m.combined([dep(2, 2), dep(3, 3, gen=3)]))


@pytest.mark.parametrize("total", [0, 1, 2, 7])
def test_a_share_splits_like_the_function(total: int) -> None:
    assert SpotShare(40, 1).split(total) == split_replicas(total, 40, 1)
