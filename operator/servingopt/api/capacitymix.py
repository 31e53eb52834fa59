"""CapacityMix: how many replicas a ModelServing runs, split between on-demand and spot.

servingopt creates one for a ModelServing whose plan keeps part of a spot workload
on-demand. Its autoscaler (HPA or KEDA) scales the CapacityMix through its ``scale``
subresource instead of the Deployment; servingopt then sets the user's Deployment to
the on-demand part and a Deployment it owns (the same pod template, on spot) to the
rest. The split is a function of the total alone, so the policy's share holds at
every count the autoscaler reaches. Users do not write these objects.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .base import API_VERSION, ApiModel, ObjectMeta
from .names import DnsSubdomain


class CapacityMixSpec(ApiModel):
    """The total and how to split it."""

    replicas: Annotated[int, Field(ge=0, le=10000)] = 1
    """Total replicas; written by the autoscaler through the scale subresource."""
    on_demand_deployment: DnsSubdomain
    """The ModelServing's Deployment: it runs the on-demand part."""
    spot_deployment: DnsSubdomain
    """servingopt's copy of that Deployment on spot capacity: it runs the rest."""
    max_spot_percent: Annotated[int, Field(ge=0, le=100)]
    """Largest share of the total on spot (from the governing ServingPolicy)."""
    on_demand_base_replicas: Annotated[int, Field(ge=0, le=10000)] = 0
    """Replicas on-demand whatever the share."""


class CapacityMixStatus(ApiModel):
    """What servingopt last set."""

    replicas: int = 0
    """On-demand plus spot replicas set on the two Deployments."""
    selector: str = ""
    """Label selector of the pods of both Deployments (the autoscaler reads it)."""
    on_demand_replicas: int = 0
    """Replicas set on the user's Deployment."""
    spot_replicas: int = 0
    """Replicas set on the spot copy."""


class CapacityMix(ApiModel):
    """An on-demand/spot split servingopt owns for a ModelServing (scaled by its HPA)."""

    api_version: Literal["servingopt.io/v1alpha1"] = API_VERSION
    kind: Literal["CapacityMix"] = "CapacityMix"
    metadata: ObjectMeta = ObjectMeta()
    spec: CapacityMixSpec
    status: CapacityMixStatus | None = None
