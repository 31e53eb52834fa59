"""The ServingPolicy resource: cluster admins' knobs and guardrails."""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from .base import API_VERSION, ApiModel, CapacityType, Mode, ObjectMeta, Rule, list_set
from .modelserving import ModelServingSpec, Name
from .names import DnsSubdomain, LabelValue, QualifiedName

SelectorOperator = Literal["In", "NotIn", "Exists", "DoesNotExist"]
#: Glob patterns (fnmatch: `*`, `?`) over image references and env var names.
IMAGE_GLOB = r"^[A-Za-z0-9._:/@*?-]+$"
ENV_GLOB = r"^[A-Za-z_*?][A-Za-z0-9_*?]*$"
URL = r"^https?://\S+$"
#: The env names servingopt writes by default (batching and cache settings).
DEFAULT_ENV_NAMES = (
    "MAX_BATCH_SIZE",
    "MAX_QUEUE_DELAY_MICROSECONDS",
    "RESPONSE_CACHE_ENABLED",
    "RESPONSE_CACHE_SIZE_MIB",
)

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
    rollout_timeout_seconds: Annotated[int, Field(ge=30, le=86400)] = 600
    """How long a rollout may leave pods Pending (unschedulable) before it counts as
    stalled and is rolled back; a Deployment's `ProgressDeadlineExceeded` counts at once."""


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
    payback_horizon_seconds: Annotated[int, Field(ge=0, le=604800)] = 3600
    """A change that rolls the pods must save more over this horizon than its rollout
    costs: surge pods running beside the old ones for one node provisioning plus
    start-up, and the chance of a worse configuration times a rollback (SLO fixes
    excepted). Default one hour, the planner's forecast horizon: a saving predicted for
    today's demand is not trusted further ahead. 0 turns the check off."""
    min_interval_seconds: Annotated[int, Field(ge=0, le=604800)] = 900
    """Minimum time between two applied changes of one ModelServing."""
    max_replica_step: Annotated[int, Field(ge=1, le=10000)] = 4
    """Largest change of minReplicas in one decision."""
    rollback: Rollback = Rollback()
    """Automatic rollback after an SLO breach."""
    maintenance_windows: Annotated[list[MaintenanceWindow], Field(max_length=14)] = []
    """When set, cost-saving changes (pool, variant, scale-down) only happen inside one
    of these windows; changes that protect the SLO happen at any time."""


class SelectorRequirement(ApiModel):
    """One label requirement of a selector (as in metav1.LabelSelectorRequirement)."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="(self.operator in ['In', 'NotIn']) == (has(self.values) && "
            "self.values.size() > 0)",
            message="values must be non-empty for In and NotIn, and empty for Exists and "
            "DoesNotExist",
            check=lambda m: (m.operator in ("In", "NotIn")) == bool(m.values),
            field="values",
        ),
    )

    key: QualifiedName
    """Label key."""
    operator: SelectorOperator
    """`In`, `NotIn`, `Exists` or `DoesNotExist`."""
    values: Annotated[list[LabelValue], Field(json_schema_extra=list_set(max_items=64))] = []
    """Values for `In` / `NotIn`."""

    def matches(self, labels: dict[str, str]) -> bool:
        if self.operator == "Exists":
            return self.key in labels
        if self.operator == "DoesNotExist":
            return self.key not in labels
        inside = self.key in labels and labels[self.key] in self.values
        return inside if self.operator == "In" else not inside


class NamespaceSelector(ApiModel):
    """Which namespaces a policy governs, by their labels. `{}` selects every namespace."""

    match_labels: Annotated[
        dict[QualifiedName, LabelValue], Field(json_schema_extra={"maxProperties": 32})
    ] = {}
    """Labels a namespace must carry (all of them). Every namespace has
    `kubernetes.io/metadata.name: <its name>`."""
    match_expressions: Annotated[list[SelectorRequirement], Field(max_length=32)] = []
    """Further requirements, all of which must hold."""

    def matches(self, labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match_labels.items()) and all(
            e.matches(labels) for e in self.match_expressions
        )


class WorkloadRules(ApiModel):
    """What servingopt may write into a governed workload on a ModelServing's behalf."""

    allowed_images: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=512, pattern=IMAGE_GLOB)]],
        Field(json_schema_extra=list_set(max_items=64)),
    ] = []
    """Glob patterns (`*`, `?`) a variant's image reference must match as a whole, e.g.
    `registry.example.com/ml/*`. Empty: variants may not change the image."""
    allow_args: bool = False
    """Whether a variant may replace the container's args."""
    allowed_env_names: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=128, pattern=ENV_GLOB)]],
        Field(json_schema_extra=list_set(max_items=64)),
    ] = list(DEFAULT_ENV_NAMES)
    """Glob patterns of env var names servingopt may set (variant env, batching and
    cache settings). Default: servingopt's own batching and cache names. Loader and
    interpreter variables (`LD_*`, `PYTHONPATH`…) are refused whatever this says."""


class CatalogRef(ApiModel):
    """A cluster-scoped InstanceCatalog."""

    name: DnsSubdomain = "default"
    """Name of the InstanceCatalog."""


class ServingPolicySpec(ApiModel):
    """Cluster-wide policy for the ModelServings of the namespaces it selects."""

    aggressiveness: Aggressiveness = "Balanced"
    """How hard to push cost down: sets the utilisation headroom kept below the SLO
    capacity (`Conservative` 35 %, `Balanced` 20 %, `Aggressive` 10 %)."""
    default_mode: Mode = "Recommend"
    """Mode of the ModelServings this policy governs that leave `spec.mode` unset."""
    namespace_selector: NamespaceSelector | None = None
    """Namespaces this policy governs. Unset: none. A ModelServing is governed by the
    highest-`priority` policy selecting its namespace; `spec.policyRef` may pick another
    one only among those selecting it. No policy selects it: servingopt does nothing."""
    priority: Annotated[int, Field(ge=-1000, le=1000)] = 0
    """Among policies selecting one namespace, the highest governs by default."""
    workload: WorkloadRules = WorkloadRules()
    """What servingopt may write into governed workloads (images, args, env names)."""
    prometheus_url: Annotated[str, Field(max_length=2048, pattern=URL)] | None = None
    """Prometheus base URL for governed ModelServings that do not name one."""
    allowed_prometheus_urls: Annotated[
        list[Annotated[str, Field(max_length=2048, pattern=URL)]],
        Field(json_schema_extra=list_set(max_items=16)),
    ] = []
    """Other Prometheus base URLs a ModelServing may name in `spec.metrics.prometheusUrl`
    (besides `prometheusUrl` and the operator's `--prometheus-url`)."""
    metrics_namespace_label: Annotated[
        str, Field(min_length=1, max_length=128, pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")
    ] = "namespace"
    """The Prometheus label holding a series' Kubernetes namespace: servingopt always
    matches it to the ModelServing's own namespace."""
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


def effective_mode(spec: ModelServingSpec | None, policy: ServingPolicySpec) -> Mode:
    """The mode servingopt acts in: the ModelServing's own, else its policy's default."""
    return (spec.mode if spec is not None else None) or policy.default_mode
