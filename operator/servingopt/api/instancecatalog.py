"""The InstanceCatalog resource: instance types, their pools and their prices."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from .base import API_VERSION, ApiModel, ObjectMeta, Rule, list_map
from .modelserving import InstanceTypeName, Name
from .names import LabelValue, QualifiedName

TaintEffect = Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]

LABEL_CAPACITY_TYPE = "karpenter.sh/capacity-type"
LABEL_INSTANCE_TYPE = "node.kubernetes.io/instance-type"
LABEL_POOL = "servingopt.io/pool"
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
    """Node pool the type belongs to (selected with the `servingopt.io/pool` label)."""
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

    def selector(self, capacity_type: str) -> dict[str, str]:
        """The nodeSelector that lands a pod on this type with this capacity type."""
        return {
            **self.node_labels,
            LABEL_INSTANCE_TYPE: self.name,
            LABEL_POOL: self.pool,
            LABEL_CAPACITY_TYPE: capacity_type,
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


class InstanceCatalog(ApiModel):
    """Instance types and what they cost. Users override prices by editing it."""

    api_version: Literal["servingopt.io/v1alpha1"] = API_VERSION
    kind: Literal["InstanceCatalog"] = "InstanceCatalog"
    metadata: ObjectMeta = ObjectMeta()
    spec: InstanceCatalogSpec

    def by_name(self) -> dict[str, InstanceType]:
        """Instance types keyed by name."""
        return {t.name: t for t in self.spec.instance_types}
