"""Thin Kubernetes I/O: read the cluster state of a workload, apply, release, report.

Everything here is a few API calls around the pure builders of :mod:`.manifests`.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from servingopt.api.instancecatalog import InstanceCatalog
from servingopt.api.modelserving import ModelServingSpec
from servingopt.values import ServingConfig, SpotShare

from . import manifests as m
from . import paths
from .client import ApiClient, ApiError

APPLY_ATTEMPTS = 6
# The deployment controller and the HPA write a Deployment in bursts (status after each
# pod, scale); a fresh read needs a pause, or every retry lands inside the same burst.
CONFLICT_BACKOFF_S = 0.1


class WorkloadError(RuntimeError):
    """The workload cannot be changed as asked (gone, or an HPA that is not ours)."""


@dataclass(frozen=True)
class ClusterState:
    """The target Deployment, its pods and their nodes, and the HPAs scaling it."""

    deployment: dict[str, Any]
    pods: list[dict[str, Any]] = field(default_factory=list)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    owned_hpa: dict[str, Any] | None = None
    foreign_hpas: list[str] = field(default_factory=list)
    foreign_scalers: list[str] = field(default_factory=list)  # e.g. KEDA ScaledObjects
    owned_scaler: dict[str, Any] | None = None
    """The KEDA ScaledObject servingopt owns (engine KEDA)."""
    scaler_hpa: dict[str, Any] | None = None
    """The HPA KEDA made from that ScaledObject (where KEDA runs)."""
    owned_mix: dict[str, Any] | None = None
    """The CapacityMix servingopt owns (a spot mix)."""
    spot_deployment: dict[str, Any] | None = None
    """The spot copy of the Deployment that mix scales."""

    @property
    def workload(self) -> Mapping[str, Any]:
        """The Deployment, or in a spot mix the Deployment and its spot copy as one (see
        :func:`~servingopt.kube.manifests.combined`): replica counts and rollouts."""
        parts = [self.deployment]
        if self.owned_mix is not None and self.spot_deployment is not None:
            parts.append(self.spot_deployment)
        return m.combined(parts)

    @property
    def replicas(self) -> int | None:
        """Ready replicas of the workload (both parts of a spot mix)."""
        value = self.workload.get("status", {}).get("readyReplicas")
        return int(value) if value is not None else None

    def owned_autoscaler(self, engine: str) -> dict[str, Any] | None:
        """What servingopt owns that scales the Deployment with ``engine``, as an HPA:
        its own HPA, or its ScaledObject read as the HPA it stands for."""
        if engine == "KEDA":
            if self.owned_scaler is None:
                return None
            return m.hpa_view(self.owned_scaler, self.scaler_hpa)
        return self.owned_hpa


def selector_string(deployment: Mapping[str, Any]) -> str:
    labels = deployment.get("spec", {}).get("selector", {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


async def read_state(
    kube: ApiClient,
    namespace: str,
    name: str,
    ms_uid: str,
    nodes: Mapping[str, dict[str, Any]] | None = None,
    mix_name: str | None = None,
    committed_for: str | None = None,
) -> ClusterState | None:
    """None when the Deployment does not exist. ``nodes``: a cache (e.g. a kopf index).
    ``mix_name``: the CapacityMix a spot mix of this ModelServing would have.
    ``committed_for``: in mode Recommend, the ModelServing whose recommended autoscaler,
    committed to Git from ``status.recommendedPatch``, is read as its own (read only)."""
    deployment = await kube.get(paths.deployment(namespace, name))
    if deployment is None:
        return None
    mix, spot = await _owned_mix(kube, namespace, mix_name, ms_uid)
    selector = selector_string(deployment)
    pods = await kube.list(paths.pods(namespace), selector) if selector else []
    found: dict[str, dict[str, Any]] = {}
    for node_name in {p.get("spec", {}).get("nodeName") for p in pods} - {None}:
        assert isinstance(node_name, str)
        node = (nodes or {}).get(node_name) or await kube.get(paths.node(node_name))
        if node is not None:
            found[node_name] = dict(node)
    scalers = await _scaled_objects(kube, namespace, name, mix_name if mix else None)
    owned_scaler = next(
        (so for so in scalers if m.owned_by(so, ms_uid) or m.committed(so, committed_for)), None
    )
    scaler_uid = (owned_scaler or {}).get("metadata", {}).get("uid", "")
    owned = scaler_hpa = None
    foreign = []
    for hpa in await kube.list(paths.hpas(namespace)):
        if not m.targets_deployment(hpa, name, mix_name if mix else None):
            continue
        if m.owned_by(hpa, ms_uid) or m.committed(hpa, committed_for):
            owned = hpa
        elif scaler_uid and m.owned_by(hpa, scaler_uid, "ScaledObject"):
            scaler_hpa = hpa  # KEDA's, from servingopt's ScaledObject
        else:
            foreign.append(hpa["metadata"]["name"])
    foreign_scalers = [
        f"ScaledObject {so['metadata']['name']}" for so in scalers if so is not owned_scaler
    ]
    return ClusterState(
        deployment,
        pods,
        found,
        owned,
        foreign,
        foreign_scalers,
        owned_scaler,
        scaler_hpa,
        mix,
        spot,
    )


async def _owned_mix(
    kube: ApiClient, namespace: str, name: str | None, ms_uid: str
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The CapacityMix servingopt owns for the ModelServing, and its spot Deployment."""
    if name is None:
        return None, None
    mix = await kube.get(paths.capacitymix(namespace, name))
    if mix is None or not m.owned_by(mix, ms_uid):
        return None, None
    spot = await kube.get(paths.deployment(namespace, mix["spec"]["spotDeployment"]))
    return mix, spot if spot is not None and m.owned_by(spot, ms_uid) else None


async def _scaled_objects(
    kube: ApiClient, namespace: str, name: str, mix_name: str | None
) -> list[dict[str, Any]]:
    """KEDA ScaledObjects that scale the Deployment or its mix (none where KEDA is not
    installed)."""
    try:
        items = await kube.list(paths.scaledobjects(namespace))
    except ApiError as error:
        if error.status == 404:  # no KEDA CRD in this cluster
            return []
        raise
    return [
        item
        for item in items
        if m.scales_deployment(item.get("spec", {}).get("scaleTargetRef") or {}, name, mix_name)
    ]


async def apply_config(
    kube: ApiClient,
    ms: Mapping[str, Any],
    spec: ModelServingSpec,
    config: ServingConfig,
    catalog: InstanceCatalog,
    container: str | None = None,
    conflict_backoff_s: float = CONFLICT_BACKOFF_S,
    trigger: m.TriggerSource | None = None,
) -> int:
    """Apply ``config`` to the Deployment and the owned autoscaler (an HPA, or a KEDA
    ScaledObject reading ``trigger``); returns the writes sent.

    A 409 (the Deployment changed since it was read) is retried on a fresh read after a
    doubling pause. Nothing is sent for parts that already hold the configuration. A
    Deployment deleted meanwhile is never re-created (see :func:`pinned`), and then no
    HPA is applied either.
    """
    namespace = ms["metadata"]["namespace"]
    path = paths.deployment(namespace, spec.target_ref.name)
    share = config.spot_share()
    # In a mix the user's Deployment runs the on-demand part.
    placed = replace(config, capacity_type="on-demand") if share is not None else config
    writes = 0
    conflicts = strips = 0
    while True:
        live = await kube.get(path)
        if live is None:
            what = f"Deployment {namespace}/{spec.target_ref.name}"
            if conflicts:  # it was there at the first read
                raise WorkloadError(f"{what} was deleted while servingopt applied to it")
            raise WorkloadError(f"{what} is gone")
        stale = m.stale_selector_keys(live, placed, catalog)
        if stale:
            strips += 1
            if strips > 2:  # another writer keeps putting them back
                raise WorkloadError(f"nodeSelector keys {', '.join(stale)} keep returning")
            await kube.merge_patch(path, m.strip_selector_patch(stale))
            writes += 1
            continue
        body = m.deployment_apply(live, spec, placed, catalog, container)
        if m.contains(live, m.without_resource_version(body)):
            break
        try:
            await kube.apply(path, pinned(body, live))
            writes += 1
            break
        except ApiError as error:
            conflicts += 1
            if not _read_again(error) or conflicts == APPLY_ATTEMPTS:
                raise
            await asyncio.sleep(conflict_backoff_s * 2 ** (conflicts - 1))
    if share is None:
        writes += await fold_mix(kube, ms, spec)  # the Deployment takes the whole count
        writes += await apply_autoscaler(kube, ms, spec, config, trigger)
        return writes + await remove_mix(kube, ms, spec)
    writes += await apply_mix(kube, ms, spec, config, catalog, share, container)
    writes += await apply_autoscaler(kube, ms, spec, config, trigger)
    mix = await kube.get(paths.capacitymix(namespace, m.mix_name(ms)))
    return writes + (await split_mix(kube, mix) if mix is not None else 0)


async def apply_mix(
    kube: ApiClient,
    ms: Mapping[str, Any],
    spec: ModelServingSpec,
    config: ServingConfig,
    catalog: InstanceCatalog,
    share: SpotShare,
    container: str | None = None,
) -> int:
    """Create or update the spot copy of the Deployment and the CapacityMix splitting
    the replicas between the two. Both are created with the replicas they start from
    (spot copy none, mix the Deployment's count), so switching to a mix changes no
    count until servingopt splits it; later applies leave replicas to the mix and the
    autoscaler. Returns the writes sent."""
    namespace = ms["metadata"]["namespace"]
    target = spec.target_ref.name
    live = await kube.get(paths.deployment(namespace, target))
    if live is None:
        raise WorkloadError(f"Deployment {namespace}/{target} is gone")
    spot = m.spot_deployment_apply(live, ms, spec, config, catalog, container)
    spot_path = paths.deployment(namespace, spot["metadata"]["name"])
    writes = await _create_or_apply(
        kube, ms, paths.deployments(namespace), spot_path, spot, {"spec": {"replicas": 0}}
    )
    total = int((live.get("spec") or {}).get("replicas") or 1)
    mix = m.mix_apply(ms, spec, share)
    mix_path = paths.capacitymix(namespace, m.mix_name(ms))
    return writes + await _create_or_apply(
        kube, ms, paths.capacitymixes(namespace), mix_path, mix, {"spec": {"replicas": total}}
    )


async def _create_or_apply(
    kube: ApiClient,
    ms: Mapping[str, Any],
    collection: str,
    path: str,
    body: Mapping[str, Any],
    on_create: Mapping[str, Any],
) -> int:
    """Create an object servingopt owns with ``on_create`` merged in (fields then set by
    an update, not owned by servingopt's apply), or apply ``body`` to the one there."""
    name = body["metadata"]["name"]
    live = await kube.get(path)
    if live is None:
        created = json.loads(json.dumps(body))
        for key, values in on_create.items():
            created.setdefault(key, {}).update(values)
        await kube.create(collection, created)
        return 1
    if not m.owned_by(live, ms["metadata"]["uid"]):
        what = f"{body['kind']} {ms['metadata']['namespace']}/{name}"
        raise WorkloadError(f"{what} exists and is not servingopt's")
    if m.contains(live, body):
        return 0
    await kube.apply(path, pinned(body, live))
    return 1


async def split_mix(kube: ApiClient, mix: Mapping[str, Any]) -> int:
    """Set the two Deployments of a CapacityMix to its split of ``spec.replicas`` and
    report it in its status. Going up the on-demand part grows first, going down the
    spot part shrinks first, so the spot share never exceeds the policy's on the way.
    Nothing is written to a spot Deployment the mix's ModelServing does not own.
    Returns the writes sent."""
    meta, spec = mix["metadata"], mix["spec"]
    namespace = meta["namespace"]
    owner = next(
        (r["uid"] for r in meta.get("ownerReferences") or [] if r.get("kind") == "ModelServing"),
        "",
    )
    od_path = paths.deployment(namespace, spec["onDemandDeployment"])
    spot_path = paths.deployment(namespace, spec["spotDeployment"])
    od_live, spot_live = await kube.get(od_path), await kube.get(spot_path)
    if od_live is None or spot_live is None or not m.owned_by(spot_live, owner):
        return 0
    share = SpotShare(int(spec["maxSpotPercent"]), int(spec.get("onDemandBaseReplicas") or 0))
    on_demand, spot = share.split(int(spec.get("replicas", 1)))
    steps = [(od_path, od_live, on_demand), (spot_path, spot_live, spot)]
    if spot < int(spot_live.get("spec", {}).get("replicas") or 0):
        steps.reverse()
    writes = 0
    for path, live, wanted in steps:
        if live.get("spec", {}).get("replicas") != wanted:
            await kube.merge_patch(path, {"spec": {"replicas": wanted}})
            writes += 1
    status = {
        "replicas": on_demand + spot,
        "selector": selector_string(od_live),
        "onDemandReplicas": on_demand,
        "spotReplicas": spot,
    }
    if (mix.get("status") or {}) != status:
        await kube.merge_patch(
            paths.capacitymix_status(namespace, meta["name"]), {"status": status}
        )
        writes += 1
    return writes


async def fold_mix(kube: ApiClient, ms: Mapping[str, Any], spec: ModelServingSpec) -> int:
    """Before a spot mix ends: the user's Deployment takes the whole replica count (its
    own part and the spot copy's), so no capacity is lost when the copy goes."""
    namespace = ms["metadata"]["namespace"]
    mix = await kube.get(paths.capacitymix(namespace, m.mix_name(ms)))
    if mix is None or not m.owned_by(mix, ms["metadata"]["uid"]):
        return 0
    path = paths.deployment(namespace, spec.target_ref.name)
    live = await kube.get(path)
    total = int((mix.get("spec") or {}).get("replicas") or 0)
    if live is None or total < 1 or live.get("spec", {}).get("replicas") == total:
        return 0
    await kube.merge_patch(path, {"spec": {"replicas": total}})
    return 1


async def remove_mix(kube: ApiClient, ms: Mapping[str, Any], spec: ModelServingSpec) -> int:
    """Delete the CapacityMix and the spot copy servingopt owns (those that exist)."""
    namespace = ms["metadata"]["namespace"]
    writes = 0
    for path in (
        paths.capacitymix(namespace, m.mix_name(ms)),
        paths.deployment(namespace, m.spot_deployment_name(spec.target_ref.name)),
    ):
        live = await kube.get(path)
        if live is not None and m.owned_by(live, ms["metadata"]["uid"]):
            writes += 1 if await kube.delete(path) else 0
    return writes


def pinned(body: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` bound to the object read, by its uid.

    Server-side apply creates an object that does not exist, even when the body carries
    a resourceVersion; a ``metadata.uid`` that no live object has is refused instead
    (409 "uid mismatch", or 422 "field is immutable" when another object took the name).
    servingopt's apply bodies are fragments of the user's Deployment: never a new one.
    """
    out: dict[str, Any] = json.loads(json.dumps(body))
    uid = (live.get("metadata") or {}).get("uid")
    if uid:  # every object the API server returns has one
        out.setdefault("metadata", {})["uid"] = uid
    return out


def _read_again(error: ApiError) -> bool:
    """Whether an apply failed because the object is not the one read: changed (409),
    gone (409 uid mismatch, 404) or replaced under the same name (422 on the uid)."""
    return error.status in (404, 409) or (error.status == 422 and "metadata.uid" in error.message)


async def apply_autoscaler(
    kube: ApiClient,
    ms: Mapping[str, Any],
    spec: ModelServingSpec,
    config: ServingConfig,
    trigger: m.TriggerSource | None,
) -> int:
    """Apply the autoscaler of the spec's engine, then remove the other engine's one
    servingopt owns (a switch of engine); returns the writes sent."""
    if spec.autoscaling.engine == "KEDA":
        if trigger is None:
            raise WorkloadError("autoscaling.engine KEDA needs a Prometheus URL for its trigger")
        writes = await apply_scaled_object(kube, ms, spec, config, trigger)
        return writes + await remove_owned_hpa(kube, ms, scaled_object=False)
    writes = await _remove_scaled_object(kube, ms)
    return writes + await apply_hpa(kube, ms, spec, config)


async def _remove_scaled_object(kube: ApiClient, ms: Mapping[str, Any]) -> int:
    """Delete the ScaledObject servingopt owns and the HPA KEDA made from it, which
    holds the name servingopt's own HPA takes (KEDA or the garbage collector would delete
    it too, but not before the HPA is due)."""
    namespace = ms["metadata"]["namespace"]
    path = paths.scaledobject(namespace, m.hpa_name(ms))
    live = await kube.get(path)  # None also where KEDA is not installed
    if live is None or not m.owned_by(live, ms["metadata"]["uid"]):
        return 0
    writes = 1 if await kube.delete(path) else 0
    hpa_path = paths.hpa(namespace, m.hpa_name(ms))
    keda_hpa = await kube.get(hpa_path)
    if keda_hpa is not None and m.owned_by(keda_hpa, live["metadata"]["uid"], "ScaledObject"):
        writes += 1 if await kube.delete(hpa_path) else 0
    return writes


async def apply_scaled_object(
    kube: ApiClient,
    ms: Mapping[str, Any],
    spec: ModelServingSpec,
    config: ServingConfig,
    trigger: m.TriggerSource,
) -> int:
    """Apply the KEDA ScaledObject servingopt owns for ``config`` (0 or 1 writes)."""
    path = paths.scaledobject(ms["metadata"]["namespace"], m.hpa_name(ms))
    return await _apply_owned(kube, ms, path, m.scaled_object_apply(ms, spec, config, trigger))


async def apply_hpa(
    kube: ApiClient, ms: Mapping[str, Any], spec: ModelServingSpec, config: ServingConfig
) -> int:
    """Apply the HPA servingopt owns for ``config``; returns the writes sent (0 or 1)."""
    path = paths.hpa(ms["metadata"]["namespace"], m.hpa_name(ms))
    return await _apply_owned(kube, ms, path, m.hpa_apply(ms, spec, config))


async def _apply_owned(
    kube: ApiClient, ms: Mapping[str, Any], path: str, desired: Mapping[str, Any]
) -> int:
    """Apply an object servingopt owns for ``ms`` unless it already holds ``desired``;
    one of the same name that is not servingopt's is refused."""
    live = await kube.get(path)
    if live is not None and not m.owned_by(live, ms["metadata"]["uid"]):
        kind = "HPA" if desired["kind"] == "HorizontalPodAutoscaler" else desired["kind"]
        what = f"{kind} {ms['metadata']['namespace']}/{m.hpa_name(ms)}"
        raise WorkloadError(f"{what} exists and is not servingopt's")
    if live is not None and m.contains(live, desired):
        return 0
    await kube.apply(path, dict(desired))
    return 1


async def remove_owned_hpa(
    kube: ApiClient, ms: Mapping[str, Any], *, hpa: bool = True, scaled_object: bool = True
) -> int:
    """Delete the HPA and the KEDA ScaledObject servingopt owns (those that exist)."""
    namespace = ms["metadata"]["namespace"]
    targets = [paths.hpa(namespace, m.hpa_name(ms))] if hpa else []
    if scaled_object:
        targets.append(paths.scaledobject(namespace, m.hpa_name(ms)))
    writes = 0
    for path in targets:
        live = await kube.get(path)  # None also where KEDA is not installed
        if live is not None and m.owned_by(live, ms["metadata"]["uid"]):
            writes += 1 if await kube.delete(path) else 0
    return writes


async def remove_autoscaling(kube: ApiClient, ms: Mapping[str, Any], spec: ModelServingSpec) -> int:
    """Stop autoscaling a workload: a spot mix folded back into the Deployment, then the
    owned HPA or ScaledObject and the mix removed."""
    writes = await fold_mix(kube, ms, spec)
    writes += await remove_owned_hpa(kube, ms)
    return writes + await remove_mix(kube, ms, spec)


def _owns_fields(obj: Mapping[str, Any], manager: str) -> bool:
    entries = obj.get("metadata", {}).get("managedFields") or []
    return any(e.get("manager") == manager and e.get("operation") == "Apply" for e in entries)


async def release_workload(
    kube: ApiClient,
    ms: Mapping[str, Any],
    spec: ModelServingSpec,
    catalog: InstanceCatalog,
    container: str | None = None,
) -> int:
    """Hand servingopt's Deployment fields to ``servingopt-released``, keeping values
    (with the whole replica count of a spot mix, whose spot copy then goes)."""
    namespace = ms["metadata"]["namespace"]
    path = paths.deployment(namespace, spec.target_ref.name)
    await fold_mix(kube, ms, spec)
    live = await kube.get(path)
    if live is None or not _owns_fields(live, m.FIELD_MANAGER):
        return 0
    config = m.observed_config(live, None, spec, catalog, container_name=container)
    if config.instance_type is None:
        shape: dict[str, Any] = {"metadata": {"name": live["metadata"]["name"]}}
    else:
        shape = m.deployment_apply(live, spec, config, catalog, container)
    handover, empty = m.release_bodies(shape, live)
    # Pinned: a Deployment deleted meanwhile stays deleted (409, retried by the caller).
    await kube.apply(path, pinned(handover, live), manager=m.RELEASED_MANAGER)
    await kube.apply(path, pinned(empty, live))
    return 2


async def patch_status(kube: ApiClient, ms: Mapping[str, Any], status: Mapping[str, Any]) -> None:
    meta = ms["metadata"]
    await kube.merge_patch(
        paths.modelserving_status(meta["namespace"], meta["name"]), {"status": status}
    )


def read_state_annotation(ms: Mapping[str, Any]) -> dict[str, Any]:
    raw = (ms.get("metadata", {}).get("annotations") or {}).get(m.STATE_ANNOTATION)
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


async def save_state_annotation(
    kube: ApiClient, ms: Mapping[str, Any], state: Mapping[str, Any]
) -> bool:
    """Store the controller's memory on the ModelServing; False when unchanged."""
    if read_state_annotation(ms) == json.loads(json.dumps(state)):
        return False
    meta = ms["metadata"]
    text = json.dumps(state, sort_keys=True, separators=(",", ":"))
    await kube.merge_patch(
        paths.modelserving(meta["namespace"], meta["name"]),
        {"metadata": {"annotations": {m.STATE_ANNOTATION: text}}},
    )
    return True


async def post_event(
    kube: ApiClient, ms: Mapping[str, Any], kind: str, reason: str, message: str, now: str
) -> None:
    """Post an Event; a failure is logged by the caller, never fatal."""
    body = m.event(ms, kind, reason, message, now, socket.gethostname())
    await kube.create(paths.events(ms["metadata"]["namespace"]), body)
