"""Pure manifest builders: exactly servingopt's fields, read back to the same configuration."""

from __future__ import annotations

import copy
from typing import Any

from ctl_fixtures import load_catalog, load_resnet, user_deployment
from hypothesis import given, settings
from hypothesis import strategies as st

from servingopt.api import InstanceCatalog, ModelServing
from servingopt.kube import manifests as m
from servingopt.values import ServingConfig, canonical_behavior

BEHAVIOR = canonical_behavior(
    {
        "scaleDown": {
            "stabilizationWindowSeconds": 300,
            "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
        }
    }
)
T4 = ServingConfig("g4dn.xlarge", "gpu-t4", "spot", "int8", 2, 8, 16, 4000, 85.5, BEHAVIOR)
C6I = ServingConfig("c6i.2xlarge", "cpu-c6i-2x", "on-demand", "int8", 3, 12, 4, 2000, 20.0)
MS_META = {"name": "resnet", "namespace": "ml", "uid": "u-1"}


def merge(live: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """What the API server stores after the apply (enough of SSA merging for these fields)."""
    out = copy.deepcopy(live)
    pod = out["spec"]["template"]["spec"]
    want = body["spec"]["template"]["spec"]
    pod["nodeSelector"] = {**pod.get("nodeSelector", {}), **want["nodeSelector"]}
    pod["tolerations"] = want["tolerations"]
    for patch in want["containers"]:
        container = next(c for c in pod["containers"] if c["name"] == patch["name"])
        env = {e["name"]: e for e in container.get("env", [])}
        env.update({e["name"]: e for e in patch.get("env", [])})
        container["env"] = list(env.values())
        for key in ("image", "args"):
            if key in patch:
                container[key] = patch[key]
        for part in ("requests", "limits"):
            container.setdefault("resources", {}).setdefault(part, {}).update(
                patch["resources"][part]
            )
    return out


def test_deployment_body_holds_only_servingopt_fields(
    deployment: dict[str, Any], resnet: ModelServing, catalog: InstanceCatalog
) -> None:
    body = m.deployment_apply(deployment, resnet.spec, T4, catalog)
    assert set(body["spec"]) == {"template"}  # never spec.replicas
    assert set(body["spec"]["template"]["spec"]) == {"nodeSelector", "tolerations", "containers"}
    assert body["metadata"]["resourceVersion"] == "42"
    pod = body["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {
        "nvidia.com/gpu.product": "Tesla-T4",
        "node.kubernetes.io/instance-type": "g4dn.xlarge",
        "servingopt.io/pool": "gpu-t4",
        "karpenter.sh/capacity-type": "spot",
    }
    # The user's own toleration survives; the pool's is there once.
    assert {"key": "team", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert sum(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"]) == 1
    container = pod["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {
        "MODEL_PRECISION": "int8",
        "TRITON_MAX_BATCH_SIZE": "16",
        "TRITON_MAX_QUEUE_DELAY_MICROSECONDS": "4000",
    }
    assert container["image"].endswith("-int8")
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["resources"]["requests"]["cpu"] == "3000m"


def test_moving_to_cpu_zeroes_the_users_gpu_request(
    deployment: dict[str, Any], resnet: ModelServing, catalog: InstanceCatalog
) -> None:
    body = m.deployment_apply(deployment, resnet.spec, C6I, catalog)
    resources = body["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources["requests"]["nvidia.com/gpu"] == "0"
    assert not any(
        t["key"] == "nvidia.com/gpu" for t in body["spec"]["template"]["spec"]["tolerations"]
    )


def test_requests_are_capped_to_the_node(
    resnet: ModelServing, catalog: InstanceCatalog, deployment: dict[str, Any]
) -> None:
    small = ServingConfig("c6i.large", "cpu-c6i-large", "on-demand", "int8", 1, 2)
    body = m.deployment_apply(deployment, resnet.spec, small, catalog)
    requests = body["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
    assert requests["cpu"] == "1900m"  # 2 vCPU less 0.1 reserved, below the 3000m asked


@settings(max_examples=40, deadline=None)
@given(
    config=st.sampled_from([T4, C6I]),
    batch=st.integers(1, 32),
    delay=st.integers(0, 10_000),
    low=st.integers(1, 10),
    extra=st.integers(0, 10),
    target=st.floats(0.5, 500, allow_nan=False),
)
def test_apply_then_read_back_gives_the_same_configuration(
    config: ServingConfig, batch: int, delay: int, low: int, extra: int, target: float
) -> None:
    catalog, spec = load_catalog(), load_resnet().spec
    wanted = ServingConfig(
        config.instance_type,
        config.pool,
        config.capacity_type,
        config.variant,
        low,
        low + extra,
        batch,
        delay,
        round(target, 3),
        config.behavior,
    )
    live = user_deployment()
    body = m.deployment_apply(live, spec, wanted, catalog)
    stored = merge(live, body)
    hpa = m.hpa_apply({"metadata": MS_META}, spec, wanted)
    read = m.observed_config(stored, hpa, spec, catalog, behavior_hint=wanted.behavior)
    assert read == wanted
    # …and the stored object already contains the body: no second write.
    assert m.contains(stored, m.without_resource_version(body))


def test_contains_compares_quantities_by_value() -> None:
    assert m.contains({"cpu": "3", "memory": "6Gi"}, {"cpu": "3000m", "memory": "6144Mi"})
    assert not m.contains({"cpu": "2"}, {"cpu": "3000m"})
    assert m.contains(
        {"env": [{"name": "A", "value": "1"}, {"name": "B"}]},
        {"env": [{"name": "A", "value": "1"}]},
    )
    assert not m.contains(
        {"env": [{"name": "A", "value": "2"}]}, {"env": [{"name": "A", "value": "1"}]}
    )


def test_hpa_is_owned_and_bounded(resnet: ModelServing) -> None:
    hpa = m.hpa_apply({"metadata": MS_META}, resnet.spec, T4)
    assert hpa["apiVersion"] == "autoscaling/v2"
    owner = hpa["metadata"]["ownerReferences"][0]
    assert owner["uid"] == "u-1" and owner["controller"] is True
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["maxReplicas"] == 8
    assert hpa["spec"]["scaleTargetRef"]["name"] == "resnet50-classifier"
    target = hpa["spec"]["metrics"][0]["pods"]
    assert target["metric"]["name"] == "requests_per_second"
    assert target["target"] == {"type": "AverageValue", "averageValue": "85.5"}
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert m.owned_by(hpa, "u-1") and not m.owned_by(hpa, "other")


def test_stale_user_selector_keys_are_found(resnet: ModelServing, catalog: InstanceCatalog) -> None:
    live = user_deployment(nodeSelector={"nvidia.com/gpu.product": "Tesla-V100", "disk": "ssd"})
    assert m.stale_selector_keys(live, C6I, catalog) == ["nvidia.com/gpu.product"]
    patch = m.strip_selector_patch(["nvidia.com/gpu.product"])
    assert patch["spec"]["template"]["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": None}


def test_release_hands_fields_over_with_their_live_values(
    deployment: dict[str, Any], resnet: ModelServing, catalog: InstanceCatalog
) -> None:
    body = m.deployment_apply(deployment, resnet.spec, T4, catalog)
    stored = merge(deployment, body)
    handover, empty = m.release_bodies(body, stored)
    assert m.contains(
        stored,
        {k: v for k, v in handover.items() if k != "metadata"}
        | {"metadata": {"name": "resnet50-classifier"}},
    )
    assert "resourceVersion" not in handover["metadata"]
    assert "spec" not in empty


def test_rollout_in_flight(deployment: dict[str, Any]) -> None:
    assert not m.rollout_in_flight(deployment)
    deployment["metadata"]["generation"] = 2
    assert m.rollout_in_flight(deployment)
    deployment["status"].update(observedGeneration=2, updatedReplicas=1)
    assert m.rollout_in_flight(deployment)


def test_a_rollout_past_its_progress_deadline_is_stalled_not_in_flight(
    deployment: dict[str, Any],
) -> None:
    deployment["metadata"]["generation"] = 2
    deployment["status"].update(observedGeneration=2, updatedReplicas=1)
    deployment["status"]["conditions"] = [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
    ]
    assert not m.rollout_in_flight(deployment)


# Stalled rollouts.


def _rolling(**status: object) -> dict[str, Any]:
    deployment = user_deployment()
    deployment["metadata"]["generation"] = 2
    deployment["status"] = {
        "observedGeneration": 2,
        "replicas": 4,
        "updatedReplicas": 1,
        "availableReplicas": 3,
        **status,
    }
    return deployment


def _pending(created: str, reason: str = "Unschedulable") -> dict[str, Any]:
    return {
        "metadata": {"name": "web-new-1", "creationTimestamp": created},
        "status": {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": reason,
                    "message": "0/12 nodes are available: 12 node(s) didn't match selector",
                }
            ],
        },
    }


T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z
T0_ISO = "2027-01-15T08:00:00Z"


def test_a_pod_pending_past_the_timeout_stalls_a_rollout_servingopt_started() -> None:
    pods = [_pending(T0_ISO)]
    why = m.rollout_stalled(_rolling(), pods, T0 + 601, 600, since=T0 - 5)
    assert why.startswith("pod web-new-1 Pending for 601 s (Unschedulable: 0/12 nodes")
    assert m.rollout_stalled(_rolling(), pods, T0 + 599, 600, since=T0 - 5) == ""
    # servingopt changed nothing: not its rollout to judge
    assert m.rollout_stalled(_rolling(), pods, T0 + 601, 600, since=None) == ""
    # the wait counts from the change when the pod is older than it
    assert m.rollout_stalled(_rolling(), pods, T0 + 601, 600, since=T0 + 100) == ""


def test_pending_pods_of_a_finished_rollout_are_not_a_stall() -> None:
    done = user_deployment()
    assert m.rollout_stalled(done, [_pending(T0_ISO)], T0 + 9999, 600, since=T0) == ""


def test_progress_deadline_exceeded_is_a_stall_at_once() -> None:
    deployment = _rolling(
        conditions=[
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": 'ReplicaSet "web-7d" has timed out progressing.',
            }
        ]
    )
    why = m.rollout_stalled(deployment, [], T0, 600, since=None)
    assert why.startswith("ProgressDeadlineExceeded: ReplicaSet")
    assert not m.rollout_in_flight(deployment)


# Resources: written only when the spec sizes them.


def test_an_unsized_spec_writes_only_the_gpu_the_pool_needs() -> None:
    spec = load_resnet().spec.model_copy(update={"resources": None})
    catalog = load_catalog()
    t4 = ServingConfig("g4dn.xlarge", "gpu-t4", "on-demand", "int8", 1, 4, 16, 2000, 80.0)
    body = m.deployment_apply(user_deployment(), spec, t4, catalog)
    resources = body["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources == {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}}
    c6i = ServingConfig("c6i.2xlarge", "cpu-c6i-2x", "on-demand", "int8", 1, 4, 8, 2000, 20.0)
    no_gpu = user_deployment()
    no_gpu["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "2"}}
    body = m.deployment_apply(no_gpu, spec, c6i, catalog)
    assert "resources" not in body["spec"]["template"]["spec"]["containers"][0]


def test_the_planner_sizes_an_unsized_replica_from_the_deployment() -> None:
    container = {"resources": {"requests": {"cpu": "3", "memory": "6Gi"}}}
    assert m.observed_resources(container).model_dump() == {
        "cpu_millicores": 3000,
        "memory_mi_b": 6144,
    }
    only_limits = {"resources": {"limits": {"cpu": "1500m", "memory": "1G"}}}
    assert m.observed_resources(only_limits).model_dump() == {
        "cpu_millicores": 1500,
        "memory_mi_b": 954,
    }
    assert m.observed_resources({}).model_dump() == {"cpu_millicores": 1000, "memory_mi_b": 2048}
    junk = {"resources": {"requests": {"cpu": "lots", "memory": "-1"}}}
    assert m.observed_resources(junk).model_dump() == {"cpu_millicores": 1000, "memory_mi_b": 2048}


def test_a_scale_out_of_the_same_template_is_not_a_rollout() -> None:
    deployment = user_deployment()
    deployment["spec"]["replicas"] = 5
    deployment["status"] = {
        "observedGeneration": 1,
        "replicas": 5,
        "updatedReplicas": 5,
        "availableReplicas": 3,  # two new pods of the same template still starting
    }
    assert not m.rollout_in_flight(deployment)
    deployment["status"]["replicas"] = 6  # an old pod is still there: a rollout
    assert m.rollout_in_flight(deployment)
