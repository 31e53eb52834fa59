"""The InstanceCatalog resource: instance types, their pools and their prices."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from .base import API_VERSION, ApiModel, ObjectMeta, Rule, list_map
from .modelserving import InstanceTypeName, Name
from .names import LabelValue, QualifiedName

TaintEffect = Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]
PlacementPreset = Literal["Karpenter", "EKS", "GKE", "AKS", "Custom"]

LABEL_CAPACITY_TYPE = "karpenter.sh/capacity-type"  # the Karpenter preset's
LABEL_INSTANCE_TYPE = "node.kubernetes.io/instance-type"
LABEL_POOL = "servingopt.io/pool"  # the Karpenter preset's pool label
LABEL_GPU_PRODUCT = "nvidia.com/gpu.product"
RESOURCE_GPU = "nvidia.com/gpu"


class Gpu(ApiModel):
    """Accelerators of one instance."""

    model: Annotated[str, Field(min_length=1, max_length=63)]
    """GPU model, e.g. `T4`, `A10G`, `V100`."""
    count: Annotated[int, Field(ge=1, le=64)] = 1
    """GPUs per instance."""
    memory_gi_b: Annotated[float, Field(gt=0, le=4096)]
    """Memory of one GPU in GiB."""
    resource_name: QualifiedName = RESOURCE_GPU
    """Extended resource that requests one GPU."""


class Taint(ApiModel):
    """A node taint pods need a toleration for."""

    key: QualifiedName
    """Taint key, e.g. `nvidia.com/gpu`."""
    value: LabelValue = ""
    """Taint value (may be empty)."""
    effect: TaintEffect = "NoSchedule"
    """`NoSchedule`, `PreferNoSchedule` or `NoExecute`."""


class Placement(ApiModel):
    """Which node labels (and taints) select a pool and a capacity type.

    A preset fills every field for one platform; a field set beside it overrides the
    preset's value. `Karpenter` (the default): pools by `servingopt.io/pool` (set it in
    each NodePool's `spec.template.metadata.labels`), capacity by
    `karpenter.sh/capacity-type` `on-demand`/`spot`. `EKS` (managed node groups): pools
    by `eks.amazonaws.com/nodegroup`, capacity by `eks.amazonaws.com/capacityType`
    `ON_DEMAND`/`SPOT`. `GKE`: pools by `cloud.google.com/gke-nodepool`, spot nodes by
    `cloud.google.com/gke-spot: "true"` (on-demand nodes carry no such label, so on-demand
    pods are not pinned by it; taint spot pools `cloud.google.com/gke-spot=true:NoSchedule`
    as GKE recommends, and servingopt adds the toleration to spot pods). `AKS`: pools by
    `kubernetes.azure.com/agentpool`, spot nodes by `kubernetes.azure.com/scalesetpriority:
    spot` and AKS's own spot taint, which servingopt tolerates on spot pods. `Custom`: no
    preset; set the fields."""

    preset: PlacementPreset = "Karpenter"
    """The platform whose node labels select pools and capacity types."""
    pool_label: QualifiedName | None = None
    """Node label whose value is the pool name (the catalog's `pool`)."""
    capacity_type_label: QualifiedName | None = None
    """Node label whose value tells on-demand from spot nodes."""
    on_demand_value: LabelValue | None = None
    """Its value on on-demand nodes. Empty: on-demand nodes lack the label (GKE, AKS)."""
    spot_value: LabelValue | None = None
    """Its value on spot nodes."""
    spot_taints: Annotated[list[Taint], Field(max_length=8)] | None = None
    """Taints on spot nodes; servingopt adds matching tolerations to spot pods."""

    def resolved(self) -> ResolvedPlacement:
        """The preset's values with the fields set here on top."""
        base = PLACEMENT_PRESETS.get(self.preset, PLACEMENT_PRESETS["Custom"])
        return ResolvedPlacement(
            pool_label=self.pool_label or base.pool_label,
            capacity_type_label=self.capacity_type_label or base.capacity_type_label,
            on_demand_value=(
                self.on_demand_value if self.on_demand_value is not None else base.on_demand_value
            ),
            spot_value=self.spot_value if self.spot_value is not None else base.spot_value,
            spot_taints=base.spot_taints if self.spot_taints is None else tuple(self.spot_taints),
        )


@dataclass(frozen=True)
class ResolvedPlacement:
    """A placement with every value known ("" for a capacity value: label absent)."""

    pool_label: str
    capacity_type_label: str
    on_demand_value: str
    spot_value: str
    spot_taints: tuple[Taint, ...] = ()

    def capacity_labels(self, capacity_type: str) -> dict[str, str]:
        """The nodeSelector entry choosing a capacity type (none where nodes lack it)."""
        value = self.spot_value if capacity_type == "spot" else self.on_demand_value
        return {self.capacity_type_label: value} if value else {}

    def capacity_type_of(self, labels: Mapping[str, str]) -> str | None:
        """`spot` or `on-demand` from a node's (or a selector's) labels; None when the
        labels do not say (only where on-demand nodes carry a value of their own)."""
        value = labels.get(self.capacity_type_label)
        if value is not None and value == self.spot_value:
            return "spot"
        if value is not None and value == self.on_demand_value:
            return "on-demand"
        return "on-demand" if not self.on_demand_value else None

    @property
    def keys(self) -> set[str]:
        return {self.pool_label, self.capacity_type_label}


PLACEMENT_PRESETS: dict[str, ResolvedPlacement] = {
    "Karpenter": ResolvedPlacement(LABEL_POOL, LABEL_CAPACITY_TYPE, "on-demand", "spot"),
    "EKS": ResolvedPlacement(
        "eks.amazonaws.com/nodegroup", "eks.amazonaws.com/capacityType", "ON_DEMAND", "SPOT"
    ),
    "GKE": ResolvedPlacement(
        "cloud.google.com/gke-nodepool",
        "cloud.google.com/gke-spot",
        "",
        "true",
        (Taint(key="cloud.google.com/gke-spot", value="true", effect="NoSchedule"),),
    ),
    "AKS": ResolvedPlacement(
        "kubernetes.azure.com/agentpool",
        "kubernetes.azure.com/scalesetpriority",
        "",
        "spot",
        (Taint(key="kubernetes.azure.com/scalesetpriority", value="spot", effect="NoSchedule"),),
    ),
    "Custom": ResolvedPlacement(LABEL_POOL, LABEL_CAPACITY_TYPE, "on-demand", "spot"),
}


class InstanceType(ApiModel):
    """One instance type: size, price and how pods land on it."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="!has(self.spotHourly) || self.spotHourly <= self.onDemandHourly",
            message="spotHourly must not exceed onDemandHourly",
            check=lambda m: m.spot_hourly is None or m.spot_hourly <= m.on_demand_hourly,
            field="spotHourly",
        ),
    )

    name: InstanceTypeName
    """Instance type name, e.g. `g4dn.xlarge`."""
    pool: Name
    """Node pool the type belongs to (selected with the placement's pool label)."""
    vcpu: Annotated[float, Field(gt=0, le=1024)]
    """vCPUs per instance."""
    memory_gi_b: Annotated[float, Field(gt=0, le=65536)]
    """Memory per instance in GiB."""
    gpu: Gpu | None = None
    """Accelerators; unset for CPU-only types."""
    on_demand_hourly: Annotated[float, Field(gt=0)]
    """On-demand price per instance-hour."""
    spot_hourly: Annotated[float, Field(gt=0)] | None = None
    """Spot price per instance-hour. Unset: spot is not offered for this type."""
    spot_interruptions_per_hour: Annotated[float, Field(ge=0, le=1)] = 0.02
    """Expected spot interruptions per instance-hour (costed as lost capacity)."""
    provisioning_seconds: Annotated[int, Field(ge=0, le=3600)] = 120
    """Time for a new node of this type to become ready."""
    system_reserved_cpu: Annotated[float, Field(ge=0, le=64)] = 0.1
    """vCPUs reserved for the kubelet and system daemons (not allocatable)."""
    system_reserved_memory_gi_b: Annotated[float, Field(ge=0, le=1024)] = 0.5
    """GiB reserved for the kubelet and system daemons."""
    node_labels: Annotated[
        dict[QualifiedName, LabelValue],
        Field(json_schema_extra={"maxProperties": 32}),
    ] = {}
    """Extra node labels that select this pool (in addition to instance type, pool and
    capacity type, which servingopt always sets)."""
    taints: Annotated[list[Taint], Field(max_length=16)] = []
    """Taints on this pool's nodes; servingopt adds matching tolerations."""

    def hourly_price(self, capacity_type: str) -> float | None:
        """Price for a capacity type, or None if not offered."""
        return self.spot_hourly if capacity_type == "spot" else self.on_demand_hourly

    def selector(self, capacity_type: str, placement: ResolvedPlacement) -> dict[str, str]:
        """The nodeSelector that lands a pod on this type with this capacity type."""
        return {
            **self.node_labels,
            LABEL_INSTANCE_TYPE: self.name,
            placement.pool_label: self.pool,
            **placement.capacity_labels(capacity_type),
        }


class InstanceCatalogSpec(ApiModel):
    """Prices and sizes of the instance types servingopt may choose."""

    currency: Annotated[str, Field(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$")] = "USD"
    """ISO 4217 currency of every price."""
    region: Annotated[str, Field(max_length=63)] | None = None
    """Region the prices apply to (informational)."""
    price_source: Annotated[str, Field(max_length=2048)] | None = None
    """Where the prices come from and their date."""
    instance_types: Annotated[
        list[InstanceType],
        Field(min_length=1, json_schema_extra=list_map("name", max_items=512)),
    ]
    """Instance types, unique by name."""
    placement: Placement = Placement()
    """Which node labels select a pool and a capacity type (a platform preset)."""


class InstanceCatalog(ApiModel):
    """Instance types and what they cost. Users override prices by editing it."""

    api_version: Literal["servingopt.io/v1alpha1"] = API_VERSION
    kind: Literal["InstanceCatalog"] = "InstanceCatalog"
    metadata: ObjectMeta = ObjectMeta()
    spec: InstanceCatalogSpec

    def by_name(self) -> dict[str, InstanceType]:
        """Instance types keyed by name."""
        return {t.name: t for t in self.spec.instance_types}

    @property
    def placement(self) -> ResolvedPlacement:
        return self.spec.placement.resolved()
