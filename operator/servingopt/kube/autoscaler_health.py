"""How the HPA servingopt owns is doing, read from the HPA's own status conditions.

Pure: one HPA object in, one ModelServing condition out. The HPA controller sets
``AbleToScale`` (it can read and write the scale subresource), ``ScalingActive`` (it
can compute a replica count: False with ``FailedGetPodsMetric`` when the custom metrics
API does not serve the metric) and ``ScalingLimited`` (the count it wants is clamped to
the bounds). A failing HPA holds its replica count, so every saving the plan counts on
scaling is void until it is fixed: that is a failure to report, not a detail.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from servingopt.values import AutoscalerState

CONDITION = "AutoscalerHealthy"


@dataclass(frozen=True)
class AutoscalerHealth:
    status: bool | None  # None: the HPA controller has not reported yet
    reason: str
    message: str

    def as_condition(self) -> tuple[str, str, str]:
        value = "Unknown" if self.status is None else ("True" if self.status else "False")
        return value, self.reason, self.message


def _conditions(hpa: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    raw = (hpa.get("status") or {}).get("conditions") or []
    return {str(c.get("type")): c for c in raw if isinstance(c, Mapping)}


def health(hpa: Mapping[str, Any]) -> AutoscalerHealth:
    """The HPA's health: False when it cannot scale or cannot compute a replica count
    (with the HPA's own reason and message), True otherwise (reason ``AtMaxReplicas``
    when it wants more replicas than its maximum allows)."""
    keda = hpa.get("kind") == "ScaledObject"
    name = f"{'ScaledObject' if keda else 'HPA'} {(hpa.get('metadata') or {}).get('name', '?')}"
    found = _conditions(hpa)
    for kind in ("AbleToScale", "ScalingActive"):
        cond = found.get(kind)
        if cond is not None and cond.get("status") == "False":
            reason = str(cond.get("reason") or kind)
            message = str(cond.get("message") or "")
            return AutoscalerHealth(
                False, reason, f"{name} {kind}=False: {message}; it holds its replica count"
            )
    if not found:
        waiting = " (is KEDA running?)" if keda else ""
        return AutoscalerHealth(None, "NotReported", f"{name} has no conditions yet{waiting}")
    limited = found.get("ScalingLimited") or {}
    if limited.get("status") == "True" and limited.get("reason") == "TooManyReplicas":
        return AutoscalerHealth(True, "AtMaxReplicas", f"{name}: {limited.get('message')}")
    active = found.get("ScalingActive") or {}
    return AutoscalerHealth(
        True, str(active.get("reason") or "ScalingActive"), f"{name} computes replicas"
    )


def _unix(value: Any) -> float | None:
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def state_of(hpa: Mapping[str, Any], deployment: Mapping[str, Any]) -> AutoscalerState:
    """What the guard needs of the owned HPA and the Deployment it scales."""
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    return AutoscalerState(
        healthy=health(hpa).status is not False,
        desired_replicas=int(spec.get("replicas") or 0),
        ready_replicas=int(status.get("readyReplicas") or 0),
        max_replicas=int((hpa.get("spec") or {}).get("maxReplicas") or 0),
        last_scale_at=_unix((hpa.get("status") or {}).get("lastScaleTime")),
    )
