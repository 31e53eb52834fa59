"""Thin Kubernetes I/O: read the cluster state of a workload, apply, release, report.

Everything here is a few API calls around the pure builders of :mod:`.manifests`.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from servingopt.api.instancecatalog import InstanceCatalog
from servingopt.api.modelserving import ModelServingSpec
from servingopt.values import ServingConfig

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

    @property
    def replicas(self) -> int | None:
        value = self.deployment.get("status", {}).get("readyReplicas")
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
) -> ClusterState | None:
    """None when the Deployment does not exist. ``nodes``: a cache (e.g. a kopf index)."""
    deployment = await kube.get(paths.deployment(namespace, name))
    if deployment is None:
        return None
    selector = selector_string(deployment)
    pods = await kube.list(paths.pods(namespace), selector) if selector else []
    found: dict[str, dict[str, Any]] = {}
    for node_name in {p.get("spec", {}).get("nodeName") for p in pods} - {None}:
        assert isinstance(node_name, str)
        node = (nodes or {}).get(node_name) or await kube.get(paths.node(node_name))
        if node is not None:
            found[node_name] = dict(node)
    scalers = await _scaled_objects(kube, namespace, name)
    owned_scaler = next((so for so in scalers if m.owned_by(so, ms_uid)), None)
    scaler_uid = (owned_scaler or {}).get("metadata", {}).get("uid", "")
    owned = scaler_hpa = None
    foreign = []
    for hpa in await kube.list(paths.hpas(namespace)):
        if not m.targets_deployment(hpa, name):
            continue
        if m.owned_by(hpa, ms_uid):
            owned = hpa
        elif scaler_uid and m.owned_by(hpa, scaler_uid):
            scaler_hpa = hpa  # KEDA's, from servingopt's ScaledObject
        else:
            foreign.append(hpa["metadata"]["name"])
    foreign_scalers = [
        f"ScaledObject {so['metadata']['name']}" for so in scalers if so is not owned_scaler
    ]
    return ClusterState(
        deployment, pods, found, owned, foreign, foreign_scalers, owned_scaler, scaler_hpa
    )


async def _scaled_objects(kube: ApiClient, namespace: str, name: str) -> list[dict[str, Any]]:
    """KEDA ScaledObjects that scale the Deployment (none where KEDA is not installed)."""
    try:
        items = await kube.list(paths.scaledobjects(namespace))
    except ApiError as error:
        if error.status == 404:  # no KEDA CRD in this cluster
            return []
        raise
    return [
        item
        for item in items
        if m.scales_deployment(item.get("spec", {}).get("scaleTargetRef") or {}, name)
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
    writes = 0
    conflicts = strips = 0
    while True:
        live = await kube.get(path)
        if live is None:
            what = f"Deployment {namespace}/{spec.target_ref.name}"
            if conflicts:  # it was there at the first read
                raise WorkloadError(f"{what} was deleted while servingopt applied to it")
            raise WorkloadError(f"{what} is gone")
        stale = m.stale_selector_keys(live, config, catalog)
        if stale:
            strips += 1
            if strips > 2:  # another writer keeps putting them back
                raise WorkloadError(f"nodeSelector keys {', '.join(stale)} keep returning")
            await kube.merge_patch(path, m.strip_selector_patch(stale))
            writes += 1
            continue
        body = m.deployment_apply(live, spec, config, catalog, container)
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
    return writes + await apply_autoscaler(kube, ms, spec, config, trigger)


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
    writes = await apply_hpa(kube, ms, spec, config)
    return writes + await remove_owned_hpa(kube, ms, hpa=False)


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
    """Hand servingopt's Deployment fields to ``servingopt-released``, keeping values."""
    namespace = ms["metadata"]["namespace"]
    path = paths.deployment(namespace, spec.target_ref.name)
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
