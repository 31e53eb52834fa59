"""Pure manifest builders and readers: what servingopt writes, and what it reads back.

Builders turn a :class:`~servingopt.values.ServingConfig` into server-side-apply bodies
(the user's Deployment: only the fields servingopt owns; the HPA it creates). The
reader :func:`observed_config` turns the live Deployment and HPA back into a
ServingConfig, so that "apply, then read back" gives the same configuration and an
unchanged decision sends no write (:func:`contains`).

Fields servingopt owns on the Deployment's pod template (field manager ``servingopt``):
``nodeSelector`` keys of the pool, ``tolerations`` (an atomic list: the user's own
tolerations are kept in it), and on the serving container: CPU/memory requests, memory
limit, GPU requests/limits, the batching/cache/variant env vars, and the variant's
image/args. Never ``spec.replicas`` of a Deployment an HPA scales. For a spot mix the
autoscaler scales a :data:`MIX_KIND` instead, and servingopt sets the replicas of the
user's Deployment (the on-demand part) and of its spot copy (the rest) from it.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from servingopt.api.base import API_VERSION
from servingopt.api.instancecatalog import (
    LABEL_INSTANCE_TYPE,
    RESOURCE_GPU,
    InstanceCatalog,
    InstanceType,
    ResolvedPlacement,
)
from servingopt.api.modelserving import ModelServingSpec, Resources, Variant
from servingopt.values import ServingConfig, SpotShare, canonical_behavior, held_target

FIELD_MANAGER = "servingopt"
RELEASED_MANAGER = "servingopt-released"
CONTAINER_ANNOTATION = "servingopt.io/container"
STATE_ANNOTATION = "servingopt.io/state"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_MODELSERVING = "servingopt.io/modelserving"
LABEL_CAPACITY_PART = "servingopt.io/capacity-part"  # on the pods of a mix's spot copy
# On an autoscaler committed to Git from a recommendation: the ModelServing it is for.
LABEL_RECOMMENDED_FOR = "servingopt.io/recommended-for"
MIX_KIND = "CapacityMix"
SPOT_SUFFIX = "-spot"
# What the spot copy takes from the user's Deployment besides the pod template.
DEPLOYMENT_SPEC_COPIED = ("minReadySeconds", "progressDeadlineSeconds", "strategy")

Body = dict[str, Any]


def serving_container(deployment: Mapping[str, Any], preferred: str | None = None) -> Body:
    """The container servingopt tunes: the one named by the annotation, else the first."""
    containers = deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers")
    if not containers:
        raise ValueError("the Deployment's pod template has no containers")
    if preferred:
        for container in containers:
            if container.get("name") == preferred:
                return dict(container)
        raise ValueError(f"container {preferred!r} not found in the Deployment")
    return dict(containers[0])


def pool_label_keys(catalog: InstanceCatalog) -> set[str]:
    """Node-selector keys that choose a pool (the placement's and the catalog's)."""
    keys = {LABEL_INSTANCE_TYPE, *catalog.placement.keys}
    for itype in catalog.spec.instance_types:
        keys.update(itype.node_labels)
    return keys


def pool_taint_keys(catalog: InstanceCatalog) -> set[str]:
    keys = {t.key for itype in catalog.spec.instance_types for t in itype.taints}
    return keys | {t.key for t in catalog.placement.spot_taints}


def _milli(value: int) -> str:
    return f"{value}m"


def sized_resources(
    spec: ModelServingSpec, itype: InstanceType, container: Mapping[str, Any]
) -> Body:
    """The resources servingopt sets on one replica: CPU and memory requests (and the
    memory limit) only when the spec asks servingopt to size them, capped to what one
    node can allocate; the GPU request always, as the pool needs it."""
    requests: Body = {}
    limits: Body = {}
    if spec.resources is not None:
        alloc_cpu_m = int((itype.vcpu - itype.system_reserved_cpu) * 1000)
        alloc_mem_mi = int((itype.memory_gi_b - itype.system_reserved_memory_gi_b) * 1024)
        requests["cpu"] = _milli(max(1, min(spec.resources.cpu_millicores, alloc_cpu_m)))
        memory = f"{max(1, min(spec.resources.memory_mi_b, alloc_mem_mi))}Mi"
        requests["memory"] = limits["memory"] = memory
    gpu_name = itype.gpu.resource_name if itype.gpu else RESOURCE_GPU
    if itype.gpu:
        requests[gpu_name] = limits[gpu_name] = "1"
    else:
        live = container.get("resources") or {}
        # A GPU request the user set cannot be dropped by an apply that never owned it;
        # zero releases the GPU and keeps the field ours.
        if any(gpu_name in (live.get(part) or {}) for part in ("requests", "limits")):
            requests[gpu_name] = limits[gpu_name] = "0"
    return {k: v for k, v in (("requests", requests), ("limits", limits)) if v}


def observed_resources(container: Mapping[str, Any]) -> Resources:
    """The CPU and memory one replica requests (limits where no request is set), as the
    planner wants them when the spec leaves sizing to the Deployment."""
    resources = container.get("resources") or {}
    merged = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
    cpu = _quantity(merged.get("cpu"))
    memory = _quantity(merged.get("memory"))
    default = Resources()
    millicores = math.ceil(cpu * 1000) if cpu is not None and cpu > 0 else None
    mib = math.ceil(memory / 2**20) if memory is not None and memory > 0 else None
    return Resources(
        cpu_millicores=min(millicores, 1_000_000) if millicores else default.cpu_millicores,
        memory_mi_b=min(mib, 4_194_304) if mib else default.memory_mi_b,
    )


def tolerations_for(
    itype: InstanceType,
    live: list[Body] | None,
    catalog: InstanceCatalog,
    capacity_type: str | None = None,
) -> list[Body]:
    """The user's tolerations that are not about pools, plus the target pool's (and the
    spot nodes' taints for a spot pod)."""
    pool_keys = pool_taint_keys(catalog)
    kept = [t for t in (live or []) if t.get("key") not in pool_keys]
    taints = [*itype.taints]
    if capacity_type == "spot":
        taints += [t for t in catalog.placement.spot_taints if t not in taints]
    ours = [
        {"key": t.key, "operator": "Equal", "value": t.value, "effect": t.effect} for t in taints
    ]
    return kept + ours


def container_env(spec: ModelServingSpec, config: ServingConfig, variant: Variant | None) -> Body:
    """Env vars servingopt sets, by name."""
    env: dict[str, str] = {}
    if variant is not None:
        env.update({e.name: e.value for e in variant.env})
    if spec.batching.enabled and config.max_batch_size is not None:
        env[spec.batching.env.max_batch_size] = str(config.max_batch_size)
        env[spec.batching.env.max_queue_delay_microseconds] = str(config.max_queue_delay_us or 0)
    if spec.caching.mode != "Off" and config.cache_enabled is not None:
        env[spec.caching.env.enabled] = "true" if config.cache_enabled else "false"
        if config.cache_enabled and config.cache_size_mib:
            env[spec.caching.env.size_mi_b] = str(config.cache_size_mib)
    return env


def find_variant(spec: ModelServingSpec, name: str | None) -> Variant | None:
    for variant in spec.variants or []:
        if variant.name == name:
            return variant
    return None


def deployment_apply(
    deployment: Mapping[str, Any],
    spec: ModelServingSpec,
    config: ServingConfig,
    catalog: InstanceCatalog,
    container_name: str | None = None,
) -> Body:
    """The server-side-apply body for the user's Deployment (servingopt's fields only).

    Carries the live resourceVersion, so a Deployment changed since it was read makes
    the apply fail with 409 and the caller re-reads and rebuilds.
    """
    if config.instance_type is None:
        raise ValueError("a configuration to apply needs an instance type")
    itype = catalog.by_name().get(config.instance_type)
    if itype is None:
        raise ValueError(f"instance type {config.instance_type!r} is not in the catalog")
    container = serving_container(deployment, container_name)
    pod_spec = deployment.get("spec", {}).get("template", {}).get("spec", {})
    variant = find_variant(spec, config.variant)
    env = container_env(spec, config, variant)
    patch_container: Body = {"name": container["name"]}
    if variant is not None and variant.image:
        patch_container["image"] = variant.image
    if variant is not None and variant.args:
        patch_container["args"] = list(variant.args)
    if env:
        patch_container["env"] = [{"name": k, "value": v} for k, v in sorted(env.items())]
    resources = sized_resources(spec, itype, container)
    if resources:
        patch_container["resources"] = resources
    meta = deployment.get("metadata", {})
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "spec": {
            "template": {
                "spec": {
                    "nodeSelector": node_selector(itype, config.capacity_type, catalog),
                    "tolerations": tolerations_for(
                        itype, pod_spec.get("tolerations"), catalog, config.capacity_type
                    ),
                    "containers": [patch_container],
                }
            }
        },
    }


def node_selector(
    itype: InstanceType, capacity_type: str | None, catalog: InstanceCatalog
) -> dict[str, str]:
    """The pool's selector; without a capacity type (a workload as first found, which
    did not pin one) the capacity-type key is left out."""
    placement = catalog.placement
    selector = itype.selector(capacity_type or "on-demand", placement)
    if capacity_type is None:
        selector.pop(placement.capacity_type_label, None)
    return selector


def stale_selector_keys(
    deployment: Mapping[str, Any], config: ServingConfig, catalog: InstanceCatalog
) -> list[str]:
    """Pool-selecting nodeSelector keys on the live Deployment the target pool lacks."""
    itype = catalog.by_name().get(config.instance_type or "")
    if itype is None:
        return []
    wanted = node_selector(itype, config.capacity_type, catalog)
    live = deployment.get("spec", {}).get("template", {}).get("spec", {}).get("nodeSelector") or {}
    keys = pool_label_keys(catalog)
    return sorted(k for k in live if k in keys and k not in wanted)


def strip_selector_patch(keys: list[str]) -> Body:
    """A JSON merge patch removing nodeSelector keys (set by the user, not by servingopt)."""
    return {"spec": {"template": {"spec": {"nodeSelector": dict.fromkeys(keys)}}}}


def owner_reference(ms: Mapping[str, Any]) -> Body:
    meta = ms["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelServing",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def hpa_name(ms: Mapping[str, Any]) -> str:
    return str(ms["metadata"]["name"])


def owned_metadata(ms: Mapping[str, Any]) -> Body:
    """Metadata of an autoscaler servingopt owns for a ModelServing (HPA or ScaledObject):
    named as the ModelServing, labelled as servingopt's, owned by the ModelServing."""
    meta = ms["metadata"]
    return {
        "name": hpa_name(ms),
        "namespace": meta["namespace"],
        "labels": {LABEL_MANAGED_BY: FIELD_MANAGER, LABEL_MODELSERVING: meta["name"]},
        "ownerReferences": [owner_reference(ms)],
    }


def scale_target_ref(ms: Mapping[str, Any], spec: ModelServingSpec, config: ServingConfig) -> Body:
    """What the autoscaler scales: the Deployment, or for a spot mix the CapacityMix
    that splits the total between the Deployment and its spot copy."""
    if config.spot_share() is not None:
        return {"apiVersion": API_VERSION, "kind": MIX_KIND, "name": mix_name(ms)}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.target_ref.name}


# A spot mix: the CapacityMix and the spot copy of the Deployment.


def mix_name(ms: Mapping[str, Any]) -> str:
    return hpa_name(ms)


def spot_deployment_name(target: str) -> str:
    return f"{target}{SPOT_SUFFIX}"


def mix_apply(ms: Mapping[str, Any], spec: ModelServingSpec, share: SpotShare) -> Body:
    """The CapacityMix servingopt owns for a spot mix, without ``spec.replicas``: the
    autoscaler owns that field (servingopt sets it once, when it creates the object)."""
    return {
        "apiVersion": API_VERSION,
        "kind": MIX_KIND,
        "metadata": owned_metadata(ms),
        "spec": {
            "onDemandDeployment": spec.target_ref.name,
            "spotDeployment": spot_deployment_name(spec.target_ref.name),
            "maxSpotPercent": share.max_spot_percent,
            "onDemandBaseReplicas": share.on_demand_base,
        },
    }


def spot_deployment_apply(
    deployment: Mapping[str, Any],
    ms: Mapping[str, Any],
    spec: ModelServingSpec,
    config: ServingConfig,
    catalog: InstanceCatalog,
    container_name: str | None = None,
) -> Body:
    """servingopt's copy of the user's Deployment for the spot part of a mix: the live
    pod template with servingopt's fields for spot, one more pod label
    (``servingopt.io/capacity-part: spot``) that its selector adds to the user's, and
    no ``spec.replicas`` (the CapacityMix sets it). Owned by the ModelServing."""
    patch = deployment_apply(
        deployment, spec, replace(config, capacity_type="spot"), catalog, container_name
    )
    live_spec = deployment.get("spec") or {}
    template = copy.deepcopy(live_spec.get("template") or {})
    pod = template.setdefault("spec", {})
    patch_pod = patch["spec"]["template"]["spec"]
    keys = pool_label_keys(catalog)
    selector = {k: v for k, v in (pod.get("nodeSelector") or {}).items() if k not in keys}
    pod["nodeSelector"] = {**selector, **patch_pod["nodeSelector"]}
    pod["tolerations"] = patch_pod["tolerations"]
    for want in patch_pod["containers"]:
        for have in pod.get("containers") or []:
            if have.get("name") == want["name"]:
                _overlay_container(have, want)
    meta = template.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), LABEL_CAPACITY_PART: "spot"}
    pod_selector = copy.deepcopy(live_spec.get("selector") or {})
    pod_selector["matchLabels"] = {
        **(pod_selector.get("matchLabels") or {}),
        LABEL_CAPACITY_PART: "spot",
    }
    copied = {k: live_spec[k] for k in DEPLOYMENT_SPEC_COPIED if k in live_spec}
    target = spec.target_ref.name
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            **owned_metadata(ms),
            "name": spot_deployment_name(target),
        },
        "spec": {**copied, "selector": pod_selector, "template": template},
    }


def _overlay_container(have: Body, want: Mapping[str, Any]) -> None:
    """``want``'s fields on the container ``have``, env merged by name (as a server-side
    apply of ``want`` onto the user's Deployment would)."""
    for key in ("image", "args"):
        if key in want:
            have[key] = copy.deepcopy(want[key])
    if "env" in want:
        ours = {e["name"] for e in want["env"]}
        have["env"] = [e for e in have.get("env") or [] if e.get("name") not in ours] + [
            dict(e) for e in want["env"]
        ]
    if "resources" in want:
        resources = have.setdefault("resources", {})
        for part, values in want["resources"].items():
            resources[part] = {**(resources.get(part) or {}), **values}


def _target_value(value: float) -> str:
    return f"{held_target(value):g}"


def _cpu_target(target: float | None) -> int:
    """The planned CPU utilization target in percent (70 when none is planned)."""
    return int(held_target(target, utilization=True) if target is not None else 70)


def hpa_metrics(spec: ModelServingSpec, target: float | None) -> list[Body]:
    """The HPA's metric with the planned per-replica target."""
    scaling = spec.autoscaling
    if scaling.metric == "CPUUtilization":
        return [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": _cpu_target(target)},
                },
            }
        ]
    value = _target_value(target if target is not None else 1.0)
    return [
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": scaling.pods_metric_name},
                "target": {"type": "AverageValue", "averageValue": value},
            },
        }
    ]


def hpa_apply(ms: Mapping[str, Any], spec: ModelServingSpec, config: ServingConfig) -> Body:
    """The HPA servingopt owns for a ModelServing (ownerReference to it)."""
    if config.min_replicas is None or config.max_replicas is None:
        raise ValueError("an HPA needs replica bounds")
    hpa_spec: Body = {
        "scaleTargetRef": scale_target_ref(ms, spec, config),
        "minReplicas": config.min_replicas,
        "maxReplicas": config.max_replicas,
        "metrics": hpa_metrics(spec, config.scaling_target),
    }
    behavior = config.behavior_dict()
    if behavior:
        hpa_spec["behavior"] = behavior
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": owned_metadata(ms),
        "spec": hpa_spec,
    }


@dataclass(frozen=True)
class TriggerSource:
    """Where a KEDA Prometheus trigger reads: the Prometheus the operator reads for this
    ModelServing and the preset's query over its label matchers (namespace pinned)."""

    prometheus_url: str
    query: str


KEDA_API_VERSION = "keda.sh/v1alpha1"


def keda_trigger(spec: ModelServingSpec, target: float | None, source: TriggerSource) -> Body:
    """The ScaledObject's trigger for the planned per-replica target: CPU utilization, or
    the preset's demand (requests/s or requests in flight, summed over the pods) from
    Prometheus, which KEDA divides by the replica count (``AverageValue``)."""
    if spec.autoscaling.metric == "CPUUtilization":
        return {
            "type": "cpu",
            "metricType": "Utilization",
            "metadata": {"value": str(_cpu_target(target))},
        }
    if not source.prometheus_url or not source.query:
        raise ValueError("a KEDA Prometheus trigger needs the Prometheus URL and a query")
    return {
        "type": "prometheus",
        "metricType": "AverageValue",
        "metadata": {
            "serverAddress": source.prometheus_url,
            "query": source.query,
            "threshold": _target_value(target if target is not None else 1.0),
        },
    }


def scaled_object_apply(
    ms: Mapping[str, Any], spec: ModelServingSpec, config: ServingConfig, source: TriggerSource
) -> Body:
    """The KEDA ScaledObject servingopt owns for a ModelServing: the HPA's bounds, target
    and behavior, and the HPA KEDA makes named as servingopt's own would be."""
    if config.min_replicas is None or config.max_replicas is None:
        raise ValueError("a ScaledObject needs replica bounds")
    hpa_config: Body = {"name": hpa_name(ms)}
    behavior = config.behavior_dict()
    if behavior:
        hpa_config["behavior"] = behavior
    return {
        "apiVersion": KEDA_API_VERSION,
        "kind": "ScaledObject",
        "metadata": owned_metadata(ms),
        "spec": {
            "scaleTargetRef": scale_target_ref(ms, spec, config),
            "minReplicaCount": config.min_replicas,
            "maxReplicaCount": config.max_replicas,
            "advanced": {"horizontalPodAutoscalerConfig": hpa_config},
            "triggers": [keda_trigger(spec, config.scaling_target, source)],
        },
    }


def hpa_view(scaled_object: Mapping[str, Any], keda_hpa: Mapping[str, Any] | None) -> Body:
    """A ScaledObject read as the HPA it stands for (bounds, target, behavior), with the
    status of the HPA KEDA made from it, so that reading back and health work alike for
    both engines. Without KEDA's HPA, a ScaledObject that is not Ready reads as an HPA
    that cannot compute replicas."""
    spec = scaled_object.get("spec") or {}
    trigger = (spec.get("triggers") or [{}])[0]
    values = trigger.get("metadata") or {}
    metric: Body
    if trigger.get("type") == "cpu":
        target = {"type": "Utilization", "averageUtilization": int(values.get("value", 70))}
        metric = {"type": "Resource", "resource": {"name": "cpu", "target": target}}
    else:
        target = {"type": "AverageValue", "averageValue": str(values.get("threshold", ""))}
        metric = {"type": "Pods", "pods": {"metric": {"name": "keda"}, "target": target}}
    hpa_config = (spec.get("advanced") or {}).get("horizontalPodAutoscalerConfig") or {}
    view: Body = {
        "kind": "ScaledObject",  # what it stands for, for messages
        "metadata": dict(scaled_object.get("metadata") or {}),
        "spec": {
            "minReplicas": spec.get("minReplicaCount", 0),
            "maxReplicas": spec.get("maxReplicaCount", 100),
            "metrics": [metric],
        },
    }
    if hpa_config.get("behavior"):
        view["spec"]["behavior"] = hpa_config["behavior"]
    if keda_hpa is not None:
        view["status"] = keda_hpa.get("status") or {}
        return view
    conditions = (scaled_object.get("status") or {}).get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    if ready is not None and ready.get("status") == "False":
        view["status"] = {
            "conditions": [
                {
                    "type": "ScalingActive",
                    "status": "False",
                    "reason": f"ScaledObject{ready.get('reason') or 'NotReady'}",
                    "message": f"ScaledObject not Ready: {ready.get('message') or ''}",
                }
            ]
        }
    return view


def owned_by(obj: Mapping[str, Any], owner_uid: str, kind: str = "ModelServing") -> bool:
    """Whether ``obj`` has an ownerReference to the ``kind`` object with ``owner_uid``."""
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return any(r.get("uid") == owner_uid and r.get("kind") == kind for r in refs)


def targets_deployment(hpa: Mapping[str, Any], name: str, mix: str | None = None) -> bool:
    """Whether an HPA scales the Deployment (or, given its name, the CapacityMix that
    splits it)."""
    return scales_deployment(hpa.get("spec", {}).get("scaleTargetRef", {}), name, mix)


def scales_deployment(ref: Mapping[str, Any], name: str, mix: str | None = None) -> bool:
    """Whether a scaleTargetRef names the Deployment, or the CapacityMix ``mix`` (KEDA
    defaults the kind and apiVersion to apps/v1 Deployment)."""
    kind = ref.get("kind") or "Deployment"
    api_version = ref.get("apiVersion") or "apps/v1"
    if mix is not None and kind == MIX_KIND and api_version == API_VERSION:
        return bool(ref.get("name") == mix)
    return bool(kind == "Deployment" and api_version == "apps/v1" and ref.get("name") == name)


# Reading back.


def _quantity(value: Any) -> Decimal | None:
    try:
        return Decimal(parse_quantity(value))  # type: ignore[no-untyped-call]
    except (ValueError, TypeError, InvalidOperation):
        return None


def _scalar_equal(want: Any, have: Any) -> bool:
    if want == have:
        return True
    if isinstance(want, str | int | float) and isinstance(have, str | int | float):
        a, b = _quantity(want), _quantity(have)
        return a is not None and a == b
    return False


def contains(have: Any, want: Any) -> bool:
    """Whether the live object ``have`` already holds everything in ``want``.

    Maps: every key of ``want`` must match. Lists of named items are matched by name;
    other lists must match item by item. Quantities compare by value ("3000m" == "3").
    """
    if isinstance(want, Mapping):
        if not isinstance(have, Mapping):
            return False
        return all(k in have and contains(have[k], v) for k, v in want.items())
    if isinstance(want, list):
        if not isinstance(have, list):
            return False
        if want and all(isinstance(w, Mapping) and "name" in w for w in want):
            by_name = {h.get("name"): h for h in have if isinstance(h, Mapping)}
            return all(w["name"] in by_name and contains(by_name[w["name"]], w) for w in want)
        return len(have) == len(want) and all(
            contains(h, w) for h, w in zip(have, want, strict=True)
        )
    return _scalar_equal(want, have)


def without_resource_version(body: Body) -> Body:
    out: Body = json.loads(json.dumps(body))
    out.get("metadata", {}).pop("resourceVersion", None)
    return out


def _env_map(container: Mapping[str, Any]) -> dict[str, str]:
    return {e["name"]: str(e.get("value", "")) for e in container.get("env") or [] if "name" in e}


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def observed_variant(spec: ModelServingSpec, container: Mapping[str, Any]) -> str | None:
    """The variant whose image/env/args the container runs (None when none matches)."""
    env = _env_map(container)
    for variant in spec.variants or []:
        if variant.image and container.get("image") != variant.image:
            continue
        if any(env.get(e.name) != e.value for e in variant.env):
            continue
        if variant.args and list(container.get("args") or []) != list(variant.args):
            continue
        return variant.name
    return None


def _hpa_target(hpa: Mapping[str, Any]) -> float | None:
    for metric in hpa.get("spec", {}).get("metrics") or []:
        if metric.get("type") == "Pods":
            raw = metric["pods"]["target"].get("averageValue")
            value = _quantity(raw)
            return round(float(value), 3) if value is not None else None
        if metric.get("type") == "Resource":
            raw_u = metric["resource"]["target"].get("averageUtilization")
            return float(raw_u) if raw_u is not None else None
    return None


def observed_config(
    deployment: Mapping[str, Any],
    hpa: Mapping[str, Any] | None,
    spec: ModelServingSpec,
    catalog: InstanceCatalog,
    *,
    container_name: str | None = None,
    behavior_hint: str = "",
    mix: Mapping[str, Any] | None = None,
) -> ServingConfig:
    """What the live Deployment (and owned HPA, if any) run, as a ServingConfig. With
    the CapacityMix servingopt owns, the Deployment runs the on-demand part of a spot
    mix: the configuration reads as spot, with the mix's share.

    ``behavior_hint``: the behavior servingopt applied. The API server fills defaults
    into HPA behavior, so a live behavior that contains the hint reads as the hint.
    """
    pod_spec = deployment.get("spec", {}).get("template", {}).get("spec", {})
    selector = pod_spec.get("nodeSelector") or {}
    types = catalog.by_name()
    placement = catalog.placement
    itype_name = selector.get(LABEL_INSTANCE_TYPE)
    pool = selector.get(placement.pool_label)
    if itype_name is None and pool is not None:
        in_pool = [t.name for t in catalog.spec.instance_types if t.pool == pool]
        itype_name = in_pool[0] if len(in_pool) == 1 else None
    if pool is None and itype_name in types:
        pool = types[itype_name].pool
    container = serving_container(deployment, container_name)
    env = _env_map(container)
    batching = spec.batching
    batch = _int_or_none(env.get(batching.env.max_batch_size)) if batching.enabled else None
    delay = (
        _int_or_none(env.get(batching.env.max_queue_delay_microseconds))
        if batching.enabled
        else None
    )
    cache_enabled: bool | None = None
    cache_size: int | None = None
    if spec.caching.mode != "Off" and spec.caching.env.enabled in env:
        cache_enabled = env[spec.caching.env.enabled] == "true"
        cache_size = _int_or_none(env.get(spec.caching.env.size_mi_b)) if cache_enabled else None
    if hpa is not None:
        hpa_spec = hpa.get("spec", {})
        min_r: int | None = hpa_spec.get("minReplicas", 1)
        max_r: int | None = hpa_spec.get("maxReplicas")
        target = _hpa_target(hpa)
        live_behavior = hpa_spec.get("behavior")
        hint = json.loads(behavior_hint) if behavior_hint else None
        if hint is not None and contains(live_behavior, hint):
            behavior = behavior_hint
        else:
            behavior = canonical_behavior(live_behavior)
    else:
        replicas = deployment.get("spec", {}).get("replicas", 1)
        min_r = max_r = replicas
        target, behavior = None, ""
    capacity = _selected_capacity(selector, placement)
    share = _mix_share(mix) if capacity == "on-demand" else None
    return ServingConfig(
        instance_type=itype_name,
        pool=pool,
        capacity_type="spot" if share is not None else capacity,
        variant=observed_variant(spec, container),
        min_replicas=min_r,
        max_replicas=max_r,
        max_batch_size=batch,
        max_queue_delay_us=delay,
        scaling_target=target,
        behavior=behavior,
        cache_enabled=cache_enabled,
        cache_size_mib=cache_size,
        max_spot_percent=share.max_spot_percent if share is not None else None,
        on_demand_base=share.on_demand_base if share is not None else None,
    )


def _mix_share(mix: Mapping[str, Any] | None) -> SpotShare | None:
    if mix is None:
        return None
    spec = mix.get("spec") or {}
    percent = spec.get("maxSpotPercent")
    if not isinstance(percent, int):
        return None
    return SpotShare(percent, int(spec.get("onDemandBaseReplicas") or 0))


def _selected_capacity(selector: Mapping[str, str], placement: ResolvedPlacement) -> str | None:
    """The capacity type a pod template pins. Where on-demand nodes lack the label (GKE,
    AKS), a template pinned to a pool without it runs on-demand; otherwise a template
    without the label pins none (None)."""
    if placement.capacity_type_label in selector:
        return placement.capacity_type_of(selector)
    if not placement.on_demand_value and placement.pool_label in selector:
        return "on-demand"
    return None


def combined(deployments: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """Deployments that run one workload (the two parts of a spot mix) read as one:
    replica counts summed, conditions of both, behind when either is behind."""
    if len(deployments) == 1:
        return deployments[0]
    metas = [d.get("metadata") or {} for d in deployments]
    statuses = [d.get("status") or {} for d in deployments]
    behind = any(
        st.get("observedGeneration", 0) < meta.get("generation", 0)
        for meta, st in zip(metas, statuses, strict=True)
    )
    status: Body = {"observedGeneration": 0 if behind else 1}
    for key in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas"):
        if any(key in st for st in statuses):
            status[key] = sum(int(st.get(key) or 0) for st in statuses)
    status["conditions"] = [c for st in statuses for c in st.get("conditions") or ()]
    replicas = sum(int((d.get("spec") or {}).get("replicas", 1)) for d in deployments)
    return {
        "metadata": {"name": metas[0].get("name"), "generation": 1},
        "spec": {"replicas": replicas},
        "status": status,
    }


def rollout_in_flight(deployment: Mapping[str, Any]) -> bool:
    """Whether the Deployment is still rolling out its latest template (old pods left).

    A rollout past its progress deadline is stalled, not in flight: the guard then
    judges the SLO again (and may roll back) instead of waiting for it forever.
    """
    meta, spec = deployment.get("metadata", {}), deployment.get("spec", {})
    status = deployment.get("status", {})
    if any(
        c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"
        for c in status.get("conditions") or ()
    ):
        return False
    if status.get("observedGeneration", 0) < meta.get("generation", 0):
        return True
    desired = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    total = status.get("replicas", 0)
    # Pods of an older template remain, or the newest one is short of pods. New pods of
    # the same template still starting are a scale-out, not a rollout: no configuration
    # is mixed in, and holding the guard through every scale-out would hold SLO fixes.
    return bool(updated < desired or total > updated)


def rollout_stalled(
    deployment: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
    now: float,
    timeout_s: float,
    since: float | None,
) -> str:
    """Why the Deployment's rollout is stalled ("" when it is not).

    Stalled: the deployment controller gave up (``ProgressDeadlineExceeded``), or, once
    servingopt changed the template (``since``), a pod of the rollout has been Pending
    (say, a pool without nodes) for longer than ``timeout_s``.
    """
    for cond in deployment.get("status", {}).get("conditions") or ():
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return f"ProgressDeadlineExceeded: {str(cond.get('message', ''))[:200]}"
    if since is None or not rollout_in_flight(deployment):
        return ""
    for pod in pods:
        meta, status = pod.get("metadata", {}), pod.get("status", {})
        if status.get("phase") != "Pending" or meta.get("deletionTimestamp"):
            continue
        created = _timestamp(meta.get("creationTimestamp"))
        waited = now - max(created if created is not None else now, since)
        if waited > timeout_s:
            return f"pod {meta.get('name')} Pending for {waited:.0f} s{_pending_why(status)}"
    return ""


def _pending_why(status: Mapping[str, Any]) -> str:
    for cond in status.get("conditions") or ():
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            return f" ({cond.get('reason', '')}: {str(cond.get('message', ''))[:200]})"
    return ""


def _timestamp(value: Any) -> float | None:
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def project(have: Any, shape: Any) -> Any:
    """``have`` restricted to the keys (and named list items) present in ``shape``."""
    if isinstance(shape, Mapping) and isinstance(have, Mapping):
        return {k: project(have[k], v) for k, v in shape.items() if k in have}
    if isinstance(shape, list) and isinstance(have, list):
        if shape and all(isinstance(s, Mapping) and "name" in s for s in shape):
            by_name = {h.get("name"): h for h in have if isinstance(h, Mapping)}
            return [project(by_name[s["name"]], s) for s in shape if s["name"] in by_name]
        return have
    return have


def release_bodies(applied_shape: Body, live: Mapping[str, Any]) -> tuple[Body, Body]:
    """Two applies that hand servingopt's Deployment fields over, keeping their values.

    First the live values of those fields are applied by ``servingopt-released`` (it
    becomes a co-owner), then an empty apply by ``servingopt`` drops servingopt's
    ownership; the values stay because another manager still owns them.
    """
    handover = project(live, without_resource_version(applied_shape))
    handover["apiVersion"], handover["kind"] = "apps/v1", "Deployment"
    meta = live.get("metadata", {})
    empty = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")},
    }
    return handover, empty


def event(
    ms: Mapping[str, Any], kind: str, reason: str, message: str, now: str, instance: str
) -> Body:
    """A core/v1 Event about a ModelServing."""
    meta = ms["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": API_VERSION,
            "kind": "ModelServing",
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
        },
        "type": kind,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": FIELD_MANAGER},
        "reportingComponent": FIELD_MANAGER,
        "reportingInstance": instance,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


# Recommend mode: what Auto mode would apply, as manifests a GitOps repository can hold.


def recommended_objects(
    deployment: Mapping[str, Any],
    ms: Mapping[str, Any],
    spec: ModelServingSpec,
    config: ServingConfig,
    catalog: InstanceCatalog,
    container_name: str | None = None,
    trigger: TriggerSource | None = None,
) -> list[Body]:
    """The bodies Auto mode would apply for ``config`` (the same builders), ready to
    commit: the user's Deployment with servingopt's fields only (a patch), the
    autoscaler, and for a spot mix the CapacityMix and the spot copy. Server-assigned
    fields (resourceVersion, owner references to the ModelServing) are left out: in a
    repository the objects belong to the repository."""
    share = config.spot_share()
    placed = replace(config, capacity_type="on-demand") if share is not None else config
    out = [deployment_apply(deployment, spec, placed, catalog, container_name)]
    if spec.autoscaling.engine == "KEDA":
        if trigger is None:
            raise ValueError("autoscaling.engine KEDA needs a Prometheus URL for its trigger")
        out.append(scaled_object_apply(ms, spec, config, trigger))
    else:
        out.append(hpa_apply(ms, spec, config))
    if share is not None:
        out.append(mix_apply(ms, spec, share))
        out.append(spot_deployment_apply(deployment, ms, spec, config, catalog, container_name))
    return [_committable(body) for body in out]


def _committable(body: Body) -> Body:
    out = copy.deepcopy(body)
    meta = out["metadata"]
    for key in ("resourceVersion", "ownerReferences"):
        meta.pop(key, None)
    labels = meta.get("labels")
    if labels and labels.get(LABEL_MODELSERVING):  # servingopt would own it in Auto mode
        meta["labels"] = {LABEL_RECOMMENDED_FOR: labels[LABEL_MODELSERVING]}
    return out


def committed(obj: Mapping[str, Any], modelserving: str | None) -> bool:
    """Whether ``obj`` is the autoscaler committed from ``modelserving``'s recommendation:
    its name and label as :func:`recommended_objects` wrote them, and no owner."""
    meta = obj.get("metadata") or {}
    return (
        modelserving is not None
        and meta.get("name") == modelserving
        and (meta.get("labels") or {}).get(LABEL_RECOMMENDED_FOR) == modelserving
        and not meta.get("ownerReferences")
    )
