"""Helpers of the production-fault tests (API server outage, uninstall, GitOps): what
the operator wrote, counted three ways, and when it has settled."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from e2e_support import Operator

from servingopt.devcluster import Kubectl, wait_until

DEPLOY = "resnet50-classifier"
WRITES = "servingopt_api_writes_total"
FM = "servingopt"  # servingopt's field manager


def writes(operator: Operator) -> float:
    """Every write servingopt's own client sent, summed over all labels (Deployment and
    HPA applies, status, the state annotation, Events). kopf's own patches are not in
    it: :class:`Footprint` catches those on the objects themselves."""
    return operator.metric(WRITES)


def servingopt_events(kubectl: Kubectl) -> int:
    """Events about ModelServings, counted with their repeats."""
    items = kubectl.json("get", "events")["items"]
    return sum(
        int(e.get("count") or 1) + int((e.get("series") or {}).get("count") or 0)
        for e in items
        if (e.get("involvedObject") or {}).get("kind") == "ModelServing"
    )


def manager_times(obj: dict[str, Any], manager: str) -> list[str]:
    """When ``manager`` last wrote each part of ``obj`` it owns (managedFields)."""
    return sorted(
        f"{e.get('operation')}:{e.get('subresource', '')}:{e.get('time')}"
        for e in obj["metadata"].get("managedFields") or []
        if e.get("manager") == manager
    )


def owned_hpas(kubectl: Kubectl) -> list[dict[str, Any]]:
    """HPAs that scale the Deployment (whoever made them)."""
    return [
        h
        for h in kubectl.json("get", "hpa")["items"]
        if h["spec"]["scaleTargetRef"].get("name") == DEPLOY
    ]


@dataclass(frozen=True)
class Footprint:
    """What anyone holding servingopt's pen could have changed: the operator's write
    counter, the ModelServing's resourceVersion (status, annotations, kopf's own
    patches), the Deployment's generation and servingopt's managedFields times on it,
    the HPA's spec and servingopt's times on it, and the ModelServing Events."""

    writes: float
    ms_version: str
    deploy_generation: int
    deploy_manager: tuple[str, ...]
    hpa: tuple[tuple[str, str, tuple[str, ...]], ...]
    events: int

    @classmethod
    def take(cls, kubectl: Kubectl, operator: Operator) -> Footprint:
        ms = kubectl.json("get", "modelserving", DEPLOY)
        deploy = kubectl.json("get", "deployment", DEPLOY, "--show-managed-fields")
        hpas = [  # HPAs have no metadata.generation: their spec stands in for it
            (h["metadata"]["name"], json.dumps(h["spec"], sort_keys=True), manager_times(h, FM))
            for h in kubectl.json("get", "hpa", "--show-managed-fields")["items"]
        ]
        return cls(
            writes=writes(operator),
            ms_version=ms["metadata"]["resourceVersion"],
            deploy_generation=int(deploy["metadata"]["generation"]),
            deploy_manager=tuple(manager_times(deploy, FM)),
            hpa=tuple((n, g, tuple(t)) for n, g, t in hpas),
            events=servingopt_events(kubectl),
        )

    def changes(self, later: Footprint) -> list[str]:
        """What differs, in words (empty: nothing was written)."""
        return [
            f"{name}: {getattr(self, name)!r} -> {getattr(later, name)!r}"
            for name in self.__dataclass_fields__
            if getattr(self, name) != getattr(later, name)
        ]


def wait_settled(operator: Operator, quiet_s: float, timeout: float) -> float:
    """Waits until the operator's write counter has not moved for ``quiet_s`` (longer
    than a re-plan interval); returns the seconds that took."""
    started = time.monotonic()
    last = [writes(operator), time.monotonic()]

    def quiet() -> bool:
        now_writes = writes(operator)
        if now_writes != last[0]:
            last[:] = [now_writes, time.monotonic()]
        return time.monotonic() - last[1] >= quiet_s

    wait_until(quiet, timeout, f"the operator's writes to stop for {quiet_s:.0f} s", interval=1)
    return time.monotonic() - started


def status_of(kubectl: Kubectl) -> dict[str, Any]:
    status: dict[str, Any] = kubectl.json("get", "modelserving", DEPLOY).get("status") or {}
    return status


def converged(kubectl: Kubectl, operator: Operator, timeout: float = 240) -> dict[str, Any]:
    """status.applied set, one HPA, the rollout finished and the writes settled."""
    status = wait_until(
        lambda: (s := status_of(kubectl)).get("applied") and s,
        timeout,
        f"status.applied\n{operator.log_tail()}",
    )
    wait_until(lambda: len(owned_hpas(kubectl)) == 1, 60, "the owned HPA")
    wait_until(lambda: rollout_done(kubectl), timeout, "the rollout to finish")
    wait_settled(operator, quiet_s=45, timeout=timeout)
    return dict(status)


def rollout_done(kubectl: Kubectl) -> bool:
    d = kubectl.json("get", "deployment", DEPLOY)
    s, want = d.get("status") or {}, d["spec"].get("replicas")
    return bool(
        s.get("observedGeneration") == d["metadata"]["generation"]
        and s.get("updatedReplicas") == s.get("readyReplicas") == s.get("replicas") == want
    )


def nodes_ready(kubectl: Kubectl) -> bool:
    nodes = kubectl.json("get", "nodes")["items"]
    return all(
        any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])
        for n in nodes
    )
