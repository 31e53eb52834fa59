"""The owned HPA as the loop sees it (read from the cluster, or from the replay's HPA)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AutoscalerState:
    """The owned HPA and the replicas it asked for, as read at a reconcile."""

    healthy: bool
    """It computes replicas (AbleToScale and ScalingActive are not False)."""
    desired_replicas: int
    """The Deployment's ``spec.replicas``: what the HPA last asked for."""
    ready_replicas: int
    """Ready pods: fewer than desired while the pods it added start."""
    max_replicas: int
    last_scale_at: float | None = None
    """When the HPA last changed the replica count (unix seconds; None: never)."""
