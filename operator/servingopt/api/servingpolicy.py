"""The ServingPolicy resource: cluster admins' knobs and guardrails."""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from .base import API_VERSION, ApiModel, CapacityType, Mode, ObjectMeta, Rule, list_set
from .modelserving import Name
from .names import DnsSubdomain

Aggressiveness = Literal["Conservative", "Balanced", "Aggressive"]
Weekday = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


class SpotPolicy(ApiModel):
    """How much of the capacity may run on spot instances."""

    max_percent: Annotated[int, Field(ge=0, le=100)] = 50
    """Largest share of replicas on spot (0..100). The rest, and at least
    `onDemandBaseReplicas`, stay on-demand."""
    on_demand_base_replicas: Annotated[int, Field(ge=0, le=10000)] = 1
    """Replicas kept on-demand whatever the share, so the trough survives interruptions."""


class Budgets(ApiModel):
    """Spending limits in catalog currency per hour. Plans above them are refused."""

    max_hourly_cost_per_model_serving: Annotated[float, Field(gt=0)] | None = None
    """Most one ModelServing may cost per hour. Unset: no limit."""
    max_hourly_cost_per_namespace: Annotated[float, Field(gt=0)] | None = None
    """Most all ModelServings of one namespace may cost per hour. Unset: no limit."""


class Rollback(ApiModel):
    """Return to the last good configuration when a change breaks the SLO."""

    enabled: bool = True
    """Roll back automatically."""
    breach_window_seconds: Annotated[int, Field(ge=30, le=86400)] = 300
    """How long p99 must stay above the SLO after a change before rolling back."""


class MaintenanceWindow(ApiModel):
    """A weekly window (UTC) inside which cost-saving changes may be applied."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="self.start.matches('^([01][0-9]|2[0-3]):[0-5][0-9]$')",
            message="start must be HH:MM (24 h, UTC)",
            check=lambda m: bool(HHMM.match(m.start)),
            field="start",
        ),
    )

    days: Annotated[list[Weekday], Field(min_length=1, json_schema_extra=list_set(max_items=7))]
    """Days the window opens (`Mon` … `Sun`)."""
    start: Annotated[str, Field(min_length=5, max_length=5)]
    """Opening time, `HH:MM` UTC."""
    duration_minutes: Annotated[int, Field(ge=1, le=1440)] = 60
    """Length of the window."""


class Guardrails(ApiModel):
    """Safety limits on how and when servingopt changes a workload."""

    min_saving_percent: Annotated[int, Field(ge=0, le=100)] = 10
    """Change nothing unless the projected saving is at least this (SLO fixes excepted)."""
    min_interval_seconds: Annotated[int, Field(ge=0, le=604800)] = 900
    """Minimum time between two applied changes of one ModelServing."""
    max_replica_step: Annotated[int, Field(ge=1, le=10000)] = 4
    """Largest change of minReplicas in one decision."""
    rollback: Rollback = Rollback()
    """Automatic rollback after an SLO breach."""
    maintenance_windows: Annotated[list[MaintenanceWindow], Field(max_length=14)] = []
    """When set, cost-saving changes (pool, variant, scale-down) only happen inside one
    of these windows; changes that protect the SLO happen at any time."""


class CatalogRef(ApiModel):
    """A cluster-scoped InstanceCatalog."""

    name: DnsSubdomain = "default"
    """Name of the InstanceCatalog."""


class ServingPolicySpec(ApiModel):
    """Cluster-wide policy for the ModelServings that reference it."""

    aggressiveness: Aggressiveness = "Balanced"
    """How hard to push cost down: sets the utilisation headroom kept below the SLO
    capacity (`Conservative` 35 %, `Balanced` 20 %, `Aggressive` 10 %)."""
    default_mode: Mode = "Recommend"
    """Mode for ModelServings that leave `spec.mode` at its default."""
    prometheus_url: Annotated[str, Field(max_length=2048, pattern=r"^https?://\S+$")] | None = None
    """Default Prometheus base URL for ModelServings that do not name one."""
    allowed_pools: Annotated[list[Name], Field(json_schema_extra=list_set(max_items=64))] = []
    """Pools ModelServings may use. Empty: every pool of the catalog."""
    allowed_capacity_types: Annotated[
        list[CapacityType], Field(min_length=1, json_schema_extra=list_set(max_items=2))
    ] = ["on-demand", "spot"]
    """Capacity types ModelServings may use."""
    spot: SpotPolicy = SpotPolicy()
    """Spot share limits."""
    budgets: Budgets = Budgets()
    """Spending limits."""
    guardrails: Guardrails = Guardrails()
    """Change-safety limits."""
    replan_interval_seconds: Annotated[int, Field(ge=30, le=86400)] = 300
    """How often each ModelServing is re-planned (jittered by up to 10 %)."""
    catalog_ref: CatalogRef = CatalogRef()
    """The InstanceCatalog with prices and pools."""


class ServingPolicy(ApiModel):
    """Admins' policy: aggressiveness, allowed pools, budgets and guardrails."""

    api_version: Literal["servingopt.io/v1alpha1"] = API_VERSION
    kind: Literal["ServingPolicy"] = "ServingPolicy"
    metadata: ObjectMeta = ObjectMeta()
    spec: ServingPolicySpec = ServingPolicySpec()
