"""The ModelServing resource: one served model and how servingopt may tune it."""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from .base import API_VERSION, ApiModel, CapacityType, Mode, ObjectMeta, Rule, list_map, list_set
from .names import (
    DNS_LABEL,
    DnsLabel,
    DnsSubdomain,
    ImageReference,
    LabelValue,
    is_dns_label,
)

Preset = Literal["generic", "triton", "kserve", "vllm"]
ScalingMetric = Literal["RequestsPerSecond", "Concurrency", "CPUUtilization"]
ScalingEngine = Literal["HPA", "KEDA"]
CacheMode = Literal["Auto", "On", "Off"]
SloState = Literal["Met", "AtRisk", "Breached", "Unknown"]
ConditionStatus = Literal["True", "False", "Unknown"]

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
PROM_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

Name = DnsLabel
#: An instance type name: a nodeSelector value, so a label value (never empty).
InstanceTypeName = Annotated[LabelValue, Field(min_length=1)]
#: A custom-metrics name: one segment of the custom metrics API path.
METRIC_NAME = r"^[A-Za-z0-9_][-A-Za-z0-9_.:]*$"
EnvName = Annotated[str, Field(min_length=1, max_length=128, pattern=ENV_NAME)]


class TargetRef(ApiModel):
    """The workload servingopt tunes. Only Deployments in the ModelServing's namespace."""

    api_version: Literal["apps/v1"] = "apps/v1"
    """API version of the workload. Only `apps/v1` is supported."""
    kind: Literal["Deployment"] = "Deployment"
    """Kind of the workload. Only `Deployment` is supported."""
    name: DnsSubdomain
    """Name of the Deployment, in the same namespace as the ModelServing."""
    namespace: DnsLabel | None = None
    """Optional; when set it must equal the ModelServing's namespace
    (cross-namespace targets are refused)."""


class Slo(ApiModel):
    """The service-level objective every plan must meet."""

    latency_p99_ms: Annotated[float, Field(gt=0, le=600000)]
    """Required. 99th-percentile end-to-end latency target in milliseconds
    (queueing + batching delay + inference)."""
    min_accuracy: Annotated[float, Field(ge=0, le=1)] | None = None
    """Lowest accuracy (0..1) a model variant may have to be chosen. Unset: any variant."""
    max_error_rate: Annotated[float, Field(ge=0, le=1)] | None = None
    """Highest acceptable fraction of failed requests (0..1). Unset: not enforced."""


class MetricsSource(ApiModel):
    """Where live traffic and latency come from."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="!has(self.labelMatchers) || self.labelMatchers.all(k, "
            "k.matches('^[a-zA-Z_][a-zA-Z0-9_]*$'))",
            message="labelMatchers keys must be Prometheus label names ([a-zA-Z_][a-zA-Z0-9_]*)",
            check=lambda m: all(PROM_LABEL.match(k) for k in (m.label_matchers or {})),
            field="labelMatchers",
        ),
    )

    prometheus_url: Annotated[str, Field(max_length=2048, pattern=r"^https?://\S+$")] | None = None
    """Prometheus base URL (http or https). Unset: the ServingPolicy's `prometheusUrl`."""
    preset: Preset = "generic"
    """Which series names to query: `generic` (servingopt's documented convention),
    `triton` (nv_inference_*), `kserve`, `vllm`."""
    label_matchers: (
        Annotated[
            dict[str, Annotated[str, Field(max_length=1024)]],
            Field(json_schema_extra={"maxProperties": 16}),
        ]
        | None
    ) = None
    """Exact-match labels that select this model's series (values are escaped;
    nothing here can inject PromQL). Unset: `{namespace, deployment}` of the target."""
    window_seconds: Annotated[int, Field(ge=30, le=86400)] = 300
    """Look-back window for rates and quantiles, in seconds."""
    burst_window_seconds: Annotated[int, Field(ge=2, le=60)] = 10
    """Short window whose peak rate within each minute tells bursts the per-minute rate
    hides (at least twice Prometheus' scrape interval of the serving pods)."""


class ProfilePoint(ApiModel):
    """One measured point: service time of one batch of this size."""

    batch_size: Annotated[int, Field(ge=1, le=4096)]
    """Batch size the latency was measured at."""
    latency_ms: Annotated[float, Field(gt=0, le=600000)]
    """Service (inference) time of one batch in milliseconds, excluding queueing."""


class LatencyProfile(ApiModel):
    """Measured service time per batch size on one instance type."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="self.points.map(p, p.batchSize).isSorted()",
            message="points must be ordered by increasing batchSize",
            check=lambda m: (
                [p.batch_size for p in m.points] == sorted(p.batch_size for p in m.points)
            ),
            field="points",
        ),
    )

    instance_type: InstanceTypeName
    """Instance type the profile was measured on (a name from the InstanceCatalog)."""
    points: Annotated[
        list[ProfilePoint],
        Field(min_length=1, json_schema_extra=list_map("batchSize", max_items=32)),
    ]
    """At least one point; batch sizes unique and increasing."""


class EnvVar(ApiModel):
    """A plain environment variable (name and literal value)."""

    name: EnvName
    """Variable name."""
    value: Annotated[str, Field(max_length=4096)] = ""
    """Literal value."""


class Variant(ApiModel):
    """A build of the model (fp32, fp16, int8, pruned…) and how to select it."""

    name: Name
    """Unique name of the variant, e.g. `fp32`, `int8`."""
    accuracy: Annotated[float, Field(ge=0, le=1)] | None = None
    """Measured accuracy (0..1) on the user's evaluation set; compared with
    `slo.minAccuracy`. Unset: treated as meeting any floor only when no floor is set."""
    image: ImageReference | None = None
    """Container image serving this variant. Unset: keep the Deployment's image."""
    env: Annotated[list[EnvVar], Field(json_schema_extra=list_map("name", max_items=32))] = []
    """Environment variables that select this variant."""
    args: Annotated[list[Annotated[str, Field(max_length=1024)]], Field(max_length=64)] = []
    """Container arguments that select this variant (replace the container's args)."""
    memory_mi_b: Annotated[int, Field(ge=1, le=4_194_304)] | None = None
    """Memory the loaded model needs in MiB (accelerator memory on GPU pools, host
    memory on CPU pools); used to check that it fits. Unset: assumed to fit."""
    profiles: Annotated[
        list[LatencyProfile], Field(json_schema_extra=list_map("instanceType", max_items=64))
    ] = []
    """Measured latency profiles per instance type. Types without a profile are
    estimated from live metrics or skipped."""

    def selects(self) -> bool:
        """Whether the variant says how to select it (image, env or args)."""
        return bool(self.image or self.env or self.args)


class Candidates(ApiModel):
    """Where the model may run. Empty lists mean: whatever the policy allows."""

    pools: Annotated[list[Name], Field(json_schema_extra=list_set(max_items=64))] = []
    """Node pools (InstanceCatalog `pool` names) the model may use."""
    instance_types: Annotated[
        list[InstanceTypeName],
        Field(json_schema_extra=list_set(max_items=256)),
    ] = []
    """Instance types the model may use."""
    capacity_types: Annotated[
        list[CapacityType], Field(min_length=1, json_schema_extra=list_set(max_items=2))
    ] = ["on-demand"]
    """Capacity types allowed: `on-demand`, `spot`."""


class IntRange(ApiModel):
    """An inclusive integer range."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="self.min <= self.max",
            message="min must be less than or equal to max",
            check=lambda m: m.min <= m.max,
        ),
    )

    min: Annotated[int, Field(ge=0, le=10_000_000)]
    """Lower bound (inclusive)."""
    max: Annotated[int, Field(ge=0, le=10_000_000)]
    """Upper bound (inclusive)."""


class BatchingEnv(ApiModel):
    """Environment variable names through which batching settings reach the server."""

    max_batch_size: EnvName = "MAX_BATCH_SIZE"
    """Receives the chosen maximum batch size (integer)."""
    max_queue_delay_microseconds: EnvName = "MAX_QUEUE_DELAY_MICROSECONDS"
    """Receives the chosen maximum queue delay in microseconds (integer)."""


class Batching(ApiModel):
    """Dynamic batching: the server groups requests up to a size or a delay."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="self.maxBatchSize.min >= 1",
            message="maxBatchSize.min must be at least 1",
            check=lambda m: m.max_batch_size.min >= 1,
            field="maxBatchSize",
        ),
        Rule(
            cel="self.maxBatchSize.max <= 4096",
            message="maxBatchSize.max must be at most 4096",
            check=lambda m: m.max_batch_size.max <= 4096,
            field="maxBatchSize",
        ),
        Rule(
            cel="self.maxQueueDelayMicroseconds.max <= 10000000",
            message="maxQueueDelayMicroseconds.max must be at most 10000000 (10 s)",
            check=lambda m: m.max_queue_delay_microseconds.max <= 10_000_000,
            field="maxQueueDelayMicroseconds",
        ),
    )

    enabled: bool = True
    """Let servingopt choose batching settings. When false, batch size 1 is assumed."""
    max_batch_size: IntRange = IntRange(min=1, max=32)
    """Bounds for the chosen maximum batch size (1..4096)."""
    max_queue_delay_microseconds: IntRange = IntRange(min=0, max=10_000)
    """Bounds for the chosen maximum queue delay, in microseconds."""
    env: BatchingEnv = BatchingEnv()
    """How the settings reach the server."""


class Autoscaling(ApiModel):
    """Bounds for the HPA servingopt creates and owns."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="self.minReplicas <= self.maxReplicas",
            message="minReplicas must be less than or equal to maxReplicas",
            check=lambda m: m.min_replicas <= m.max_replicas,
            field="minReplicas",
        ),
    )

    min_replicas: Annotated[int, Field(ge=1, le=10000)] = 1
    """Never fewer replicas than this."""
    max_replicas: Annotated[int, Field(ge=1, le=10000)] = 20
    """Never more replicas than this."""
    engine: ScalingEngine = "HPA"
    """Who scales the Deployment. `HPA`: an HPA servingopt owns, reading a Pods metric
    through a custom-metrics adapter. `KEDA`: a KEDA ScaledObject servingopt owns, with a
    Prometheus trigger (the operator's Prometheus and the preset's query) and the same
    bounds, target and behavior; KEDA makes the HPA."""
    metric: ScalingMetric = "RequestsPerSecond"
    """What the HPA scales on. `RequestsPerSecond` and `Concurrency` are Pods metrics
    served by a custom-metrics adapter; `CPUUtilization` needs none."""
    metric_name: Annotated[str, Field(min_length=1, max_length=253, pattern=METRIC_NAME)] | None = (
        None
    )
    """Name of the Pods metric exposed through the custom metrics API. Unset:
    `requests_per_second` (RequestsPerSecond) or `concurrent_requests` (Concurrency), the
    names `servingopt adapter-config` serves."""
    startup_seconds: Annotated[int, Field(ge=0, le=3600)] = 60
    """Seconds from a new pod being created to it serving (image pull + model load).
    Sets the headroom the HPA target keeps for traffic that grows meanwhile."""
    scale_down_stabilization_seconds: Annotated[int, Field(ge=0, le=3600)] | None = None
    """The HPA's scale-down stabilization window. Unset: servingopt picks 300 or 600 s by
    replaying the demand history. Never shorter than `startupSeconds`."""

    @property
    def pods_metric_name(self) -> str:
        """The metric the HPA names: the Pods metric, or `cpu` for CPUUtilization."""
        if self.metric_name:
            return self.metric_name
        return {
            "RequestsPerSecond": "requests_per_second",
            "Concurrency": "concurrent_requests",
        }.get(self.metric, "cpu")


class CacheEnv(ApiModel):
    """Environment variable names through which cache settings reach the server."""

    enabled: EnvName = "RESPONSE_CACHE_ENABLED"
    """Receives `true` or `false`."""
    size_mi_b: EnvName = "RESPONSE_CACHE_SIZE_MIB"
    """Receives the cache size in MiB."""


class Caching(ApiModel):
    """Response cache in front of the model (identical requests answered from memory)."""

    mode: CacheMode = "Off"
    """`Auto`: servingopt decides from the observed hit rate; `On`/`Off`: fixed."""
    max_size_mi_b: Annotated[int, Field(ge=1, le=1_048_576)] = 1024
    """Largest cache servingopt may configure, in MiB per replica."""
    expected_hit_rate: Annotated[float, Field(ge=0, le=1)] | None = None
    """Hit rate to assume until one is observed (0..1). Unset: 0."""
    env: CacheEnv = CacheEnv()
    """How the settings reach the server."""


class PolicyRef(ApiModel):
    """A cluster-scoped ServingPolicy that selects the ModelServing's namespace."""

    name: DnsSubdomain
    """Name of the ServingPolicy."""


class Resources(ApiModel):
    """CPU and memory requests of one replica (GPUs: one whole GPU on GPU pools, always)."""

    cpu_millicores: Annotated[int, Field(ge=1, le=1_000_000)] = 1000
    """CPU request per replica in millicores (profiles on CPU pools are measured at this)."""
    memory_mi_b: Annotated[int, Field(ge=1, le=4_194_304)] = 2048
    """Memory request per replica in MiB."""


class ModelServingSpec(ApiModel):
    """What to serve, the SLO, and what servingopt may change."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="!has(self.variants) || self.variants.size() == 0 || "
            "!has(self.slo.minAccuracy) || self.variants.exists(v, has(v.accuracy) "
            "&& v.accuracy >= self.slo.minAccuracy)",
            message="no variant reaches slo.minAccuracy",
            check=lambda m: (
                not m.variants
                or m.slo.min_accuracy is None
                or any(
                    v.accuracy is not None and v.accuracy >= m.slo.min_accuracy for v in m.variants
                )
            ),
            field="variants",
        ),
    )

    target_ref: TargetRef
    """Required. The Deployment to tune."""
    mode: Mode | None = None
    """`Auto`: apply decisions. `Recommend`: write status (and the patch Auto would
    apply) only, for GitOps. `Off`: do nothing and remove the autoscaler servingopt
    created. Unset: the governing ServingPolicy's `defaultMode`."""
    slo: Slo
    """Required. Latency (and optionally accuracy, error-rate) objective."""
    metrics: MetricsSource = MetricsSource()
    """Where live metrics come from."""
    variants: (
        Annotated[
            list[Variant], Field(min_length=1, json_schema_extra=list_map("name", max_items=16))
        ]
        | None
    ) = None
    """Model variants to choose from. Unset: the Deployment as it is is the only variant."""
    candidates: Candidates = Candidates()
    """Pools, instance types and capacity types the model may use."""
    resources: Resources | None = None
    """Per-replica CPU and memory requests servingopt sets (and plans with). Unset:
    servingopt leaves the Deployment's CPU and memory requests and limits alone and
    plans with them (1 CPU / 2 GiB where it sets none)."""
    batching: Batching = Batching()
    """Dynamic batching bounds and how settings reach the server."""
    autoscaling: Autoscaling = Autoscaling()
    """Replica bounds and the scaling metric of the owned HPA."""
    caching: Caching = Caching()
    """Response cache settings."""
    policy_ref: PolicyRef | None = None
    """The ServingPolicy to be governed by, among those an admin made select this
    namespace. Unset: the highest-priority policy selecting the namespace."""


class Condition(ApiModel):
    """A metav1.Condition."""

    type: Annotated[str, Field(min_length=1, max_length=316)]
    """Condition type, e.g. `Ready`, `SLOMet`, `Applied`."""
    status: ConditionStatus
    """`True`, `False` or `Unknown`."""
    reason: Annotated[str, Field(min_length=1, max_length=1024)]
    """Machine-readable CamelCase reason for the last transition."""
    message: Annotated[str, Field(max_length=32768)] = ""
    """Human-readable details."""
    last_transition_time: str
    """RFC 3339 time the status last changed."""
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """ModelServing generation the condition was set for."""


class ReplicaRange(ApiModel):
    """Replica bounds of a plan."""

    min: int
    """Fewest replicas (the HPA's minReplicas)."""
    max: int
    """Most replicas (the HPA's maxReplicas)."""


class PlanSummary(ApiModel):
    """A configuration: where and how the model runs."""

    instance_type: str | None = None
    """Instance type, e.g. `g4dn.xlarge`."""
    pool: str | None = None
    """Node pool of the instance type."""
    capacity_type: str | None = None
    """`on-demand` or `spot`."""
    variant: str | None = None
    """Name of the model variant."""
    replicas: ReplicaRange | None = None
    """Replica bounds of the HPA."""
    max_batch_size: int | None = None
    """Maximum batch size given to the server."""
    max_queue_delay_ms: float | None = None
    """Maximum queue delay given to the server, in milliseconds."""
    cache_enabled: bool | None = None
    """Whether the response cache is on."""
    cache_size_mi_b: int | None = None
    """Response cache size per replica in MiB."""
    target_per_replica: float | None = None
    """HPA target per replica (requests/s, concurrency or CPU %)."""
    hourly_cost: float | None = None
    """Projected $/h of this configuration at the forecast demand."""


class AppliedSummary(PlanSummary):
    """The configuration last written to the cluster."""

    applied_at: str | None = None
    """RFC 3339 time it was applied."""
    generation: int | None = None
    """ModelServing generation it was planned for."""


class Prediction(ApiModel):
    """What the model predicts for the recommended configuration."""

    p99_latency_ms: float | None = None
    """Predicted 99th-percentile latency in milliseconds at the forecast demand."""
    utilization: float | None = None
    """Predicted busy fraction of each replica (0..1)."""
    capacity_per_replica_rps: float | None = None
    """Requests per second one replica serves while meeting the SLO."""
    replicas: int | None = None
    """Replicas needed at the forecast demand."""
    demand_rps: float | None = None
    """Forecast demand in requests per second."""


class Cost(ApiModel):
    """Cost in $/h (catalog currency)."""

    current_hourly: float | None = None
    """From the pods running now and the nodes they sit on."""
    projected_hourly: float | None = None
    """Of the recommended configuration at the forecast demand."""
    per_million_requests: float | None = None
    """Projected cost of serving one million requests."""
    baseline_hourly: float | None = None
    """Baseline: the workload as first observed, provisioned for the same demand."""
    savings_ratio: float | None = None
    """1 - projected / baseline."""
    savings_percent: Annotated[int, Field(ge=-10000, le=100)] | None = None
    """Savings as a whole percentage (for `kubectl get`)."""


class HistoryEntry(ApiModel):
    """One past decision."""

    time: str
    """RFC 3339 time of the decision."""
    action: str
    """Applied, Recommended, Held, RolledBack…"""
    summary: Annotated[str, Field(max_length=1024)] = ""
    """The configuration decided, in one line."""
    reason: Annotated[str, Field(max_length=1024)] = ""
    """Why it was decided."""


class Alternative(ApiModel):
    """A configuration considered and not chosen."""

    instance_type: str
    """Instance type of the alternative."""
    variant: str | None = None
    """Model variant of the alternative."""
    capacity_type: str | None = None
    """`on-demand` or `spot`."""
    hourly_cost: float | None = None
    """Its projected $/h at the forecast demand."""
    p99_latency_ms: float | None = None
    """Its predicted p99 latency in milliseconds."""
    replicas: int | None = None
    """Replicas it would need."""
    rejected: str = ""
    """Why it was not chosen."""


class ModelServingStatus(ApiModel):
    """Observed state, written by servingopt only."""

    observed_generation: int | None = None
    """Generation of the spec this status describes."""
    mode: Mode | None = None
    """The mode servingopt acts in: `spec.mode`, else the governing policy's
    `defaultMode`."""
    conditions: Annotated[list[Condition], Field(json_schema_extra=list_map("type"))] = []
    """Standard conditions, one per type."""
    slo_state: SloState | None = None
    """`Met`, `AtRisk`, `Breached` or `Unknown` (no metrics)."""
    recommendation: PlanSummary | None = None
    """The cheapest configuration found that meets the SLO."""
    applied: AppliedSummary | None = None
    """The configuration last written to the workload (Auto mode)."""
    predicted: Prediction | None = None
    """Predicted behaviour of the recommendation."""
    cost: Cost | None = None
    """Current, projected and baseline cost."""
    history: Annotated[list[HistoryEntry], Field(max_length=20)] = []
    """The most recent decisions, newest first."""
    alternatives: Annotated[list[Alternative], Field(max_length=10)] = []
    """The best configurations not chosen, with why."""
    recommended_patch: Annotated[str, Field(max_length=65536)] | None = None
    """Mode `Recommend`: the objects Auto mode would apply for the recommendation, as
    YAML documents to commit (the Deployment's servingopt fields as a patch, the
    autoscaler; for a spot mix also the CapacityMix and the spot copy). `servingopt
    recommend` writes it out as a kustomize component."""


class ModelServing(ApiModel):
    """A served model whose serving configuration servingopt optimises."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel=f"self.metadata.name.size() <= 63 && self.metadata.name.matches('{DNS_LABEL}')",
            message="metadata.name: must be an RFC 1123 label (at most 63 characters of "
            "a-z, 0-9 and '-'), as it names the HPA servingopt creates and labels it",
            check=lambda m: m.metadata.name is None or is_dns_label(m.metadata.name),
        ),
    )

    api_version: Literal["servingopt.io/v1alpha1"] = API_VERSION
    kind: Literal["ModelServing"] = "ModelServing"
    metadata: ObjectMeta = ObjectMeta()
    spec: ModelServingSpec
    status: ModelServingStatus | None = None

    def namespace_rules(self) -> list[str]:
        """Checks that need metadata (CEL cannot see the namespace)."""
        problems: list[str] = []
        ref_ns = self.spec.target_ref.namespace
        ns = self.metadata.namespace
        if ref_ns and ns and ref_ns != ns:
            problems.append(
                f"spec.targetRef.namespace: cross-namespace target {ref_ns!r} is not "
                f"allowed; the ModelServing lives in {ns!r}"
            )
        return problems


def variants_without_selector(spec: ModelServingSpec) -> list[str]:
    """Variants that give no image, env or args while others exist (not selectable)."""
    if not spec.variants or len(spec.variants) < 2:
        return []
    return [v.name for v in spec.variants if not v.selects()]
