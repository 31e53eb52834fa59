"""What a replay runs against: configurations, declared and true profiles, prices.

A :class:`Scenario` bundles the ModelServing (what the user declared), the catalog and
policy, and the *ground truth* the replay uses.  The ground truth starts as the
declared profiles and can be made slower per instance type (``truth_factors``): real
servers are often 10-25 % slower than the profile someone measured once.  Policies see
only the declared side (and the metrics the replay produces); the replay's latency
comes from the truth.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from servingopt.api import InstanceCatalog, ModelServing, ServingPolicy
from servingopt.api.instancecatalog import InstanceType
from servingopt.api.modelserving import ModelServingSpec, Resources, Variant

from .latency import ReplicaLatency, ServiceCurve

#: Batch sizes and queue delays an offline search (and the oracle) tries.
BATCH_CANDIDATES = (1, 2, 4, 8, 16, 32, 64, 128)
DELAY_CANDIDATES_MS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)


@dataclass(frozen=True, order=True)
class ServingConfig:
    """Where and how replicas run: one Deployment revision."""

    instance_type: str
    capacity_type: str
    variant: str
    max_batch: int
    max_delay_ms: float
    spot_percent: int = 100
    """For spot: the largest share of the replicas on spot (the rest on-demand)."""
    on_demand_base: int = 0
    """For spot: replicas kept on-demand whatever the share."""

    def label(self) -> str:
        spot = ""
        if self.capacity_type == "spot":
            mixed = self.spot_percent < 100 or self.on_demand_base > 0
            spot = f"/spot<={self.spot_percent}%" if mixed else "/spot"
        return (
            f"{self.instance_type}{spot} {self.variant} B={self.max_batch} "
            f"D={self.max_delay_ms:g}ms"
        )


@dataclass(frozen=True)
class Scenario:
    """A ModelServing with its catalog, policy and the replay's ground truth."""

    serving: ModelServing
    catalog: InstanceCatalog
    policy: ServingPolicy = field(default_factory=ServingPolicy)
    truth_factors: Mapping[str, float] = field(default_factory=dict)
    """Service-time factor per instance type (or ``*``) of reality over the declaration."""
    initial: ServingConfig | None = None
    """What the workload runs before any tuning; derived from the spec when unset."""
    node_idle_seconds: int = 120
    """How long an empty node lives before the node autoscaler removes it."""
    request_timeout_s: float = 30.0
    """Requests that would wait longer than this in a backlog are dropped."""
    spot_interruptions: bool = False
    """Draw spot interruptions at the catalog's rate (seeded)."""

    @property
    def spec(self) -> ModelServingSpec:
        return self.serving.spec

    @property
    def name(self) -> str:
        return self.serving.metadata.name or self.spec.target_ref.name

    @property
    def slo_ms(self) -> float:
        return self.spec.slo.latency_p99_ms

    @cached_property
    def types(self) -> dict[str, InstanceType]:
        return self.catalog.by_name()

    def instance(self, name: str) -> InstanceType:
        try:
            return self.types[name]
        except KeyError:
            raise ValueError(f"instance type {name!r} is not in the catalog") from None

    def variants(self) -> list[Variant]:
        """Declared variants meeting the accuracy floor."""
        floor = self.spec.slo.min_accuracy
        found = [
            v
            for v in self.spec.variants or []
            if floor is None or (v.accuracy is not None and v.accuracy >= floor)
        ]
        if not found:
            raise ValueError("the ModelServing declares no usable variant with a profile")
        return found

    def variant(self, name: str) -> Variant:
        for v in self.spec.variants or []:
            if v.name == name:
                return v
        raise ValueError(f"variant {name!r} is not declared")

    # -- what may be used ---------------------------------------------------------

    def allowed_types(self) -> list[InstanceType]:
        cand = self.spec.candidates
        allowed_pools = set(self.policy.spec.allowed_pools)
        out = []
        for t in self.catalog.spec.instance_types:
            if cand.pools and t.pool not in cand.pools:
                continue
            if cand.instance_types and t.name not in cand.instance_types:
                continue
            if allowed_pools and t.pool not in allowed_pools:
                continue
            out.append(t)
        return out

    def capacity_types(self) -> list[str]:
        allowed = set(self.policy.spec.allowed_capacity_types)
        return [c for c in self.spec.candidates.capacity_types if c in allowed] or ["on-demand"]

    def batch_bounds(self) -> tuple[int, int]:
        b = self.spec.batching
        if not b.enabled:
            return 1, 1
        return b.max_batch_size.min, b.max_batch_size.max

    def delay_bounds_ms(self) -> tuple[float, float]:
        b = self.spec.batching
        if not b.enabled:
            return 0.0, 0.0
        d = b.max_queue_delay_microseconds
        return d.min / 1000.0, d.max / 1000.0

    def configs(self, capacity_types: list[str] | None = None) -> Iterator[ServingConfig]:
        """Every configuration with a declared profile, within the spec's bounds."""
        bmin, bmax = self.batch_bounds()
        dmin, dmax = self.delay_bounds_ms()
        batches = sorted({bmin, bmax, *(b for b in BATCH_CANDIDATES if bmin <= b <= bmax)})
        delays = sorted({dmin, dmax, *(d for d in DELAY_CANDIDATES_MS if dmin <= d <= dmax)})
        types = {t.name for t in self.allowed_types()}
        for variant in self.variants():
            for profile in variant.profiles:
                if profile.instance_type not in types:
                    continue
                for cap in capacity_types or self.capacity_types():
                    if self.instance(profile.instance_type).hourly_price(cap) is None:
                        continue
                    for b in batches:
                        for d in delays if b > 1 else [dmin]:
                            yield ServingConfig(profile.instance_type, cap, variant.name, b, d)

    # -- performance ----------------------------------------------------------------

    def declared_curve(self, instance_type: str, variant: str) -> ServiceCurve:
        for profile in self.variant(variant).profiles:
            if profile.instance_type == instance_type:
                return ServiceCurve.from_points(
                    [(p.batch_size, p.latency_ms) for p in profile.points]
                )
        raise ValueError(f"variant {variant!r} has no profile for {instance_type!r}")

    def truth_factor(self, instance_type: str) -> float:
        return float(self.truth_factors.get(instance_type, self.truth_factors.get("*", 1.0)))

    def true_latency(self, config: ServingConfig) -> ReplicaLatency:
        curve = self.declared_curve(config.instance_type, config.variant)
        factor = self.truth_factor(config.instance_type)
        return ReplicaLatency(curve.scaled(factor), config.max_batch, config.max_delay_ms)

    def declared_latency(self, config: ServingConfig) -> ReplicaLatency:
        curve = self.declared_curve(config.instance_type, config.variant)
        return ReplicaLatency(curve, config.max_batch, config.max_delay_ms)

    def capacity(self, config: ServingConfig, *, truth: bool) -> float:
        """Per-replica requests/s at which p99 meets the SLO (truth or declaration)."""
        return _capacity(self, config, truth)

    # -- money ------------------------------------------------------------------------

    def pods_per_node(self, instance_type: str) -> int:
        t = self.instance(instance_type)
        if t.gpu is not None:
            return t.gpu.count
        res = self.spec.resources or Resources()
        cpu = (t.vcpu - t.system_reserved_cpu) * 1000 // res.cpu_millicores
        mem = (t.memory_gi_b - t.system_reserved_memory_gi_b) * 1024 // res.memory_mi_b
        return max(1, int(min(cpu, mem)))

    def node_price(self, config: ServingConfig) -> float:
        price = self.instance(config.instance_type).hourly_price(config.capacity_type)
        if price is None:
            raise ValueError(f"{config.instance_type} has no {config.capacity_type} price")
        return price

    def replica_price(self, config: ServingConfig) -> float:
        """Hourly price of one replica's share of a node."""
        return self.node_price(config) / self.pods_per_node(config.instance_type)

    def startup_seconds(self, config: ServingConfig, *, new_node: bool) -> int:
        """Pod creation to ready: node provisioning (when needed) + image pull + model load."""
        node = self.instance(config.instance_type).provisioning_seconds if new_node else 0
        return node + self.spec.autoscaling.startup_seconds

    def initial_config(self) -> ServingConfig:
        return self.initial or default_initial_config(self)


_CAPACITY_CACHE: dict[tuple[Any, ...], float] = {}


def _capacity(scenario: Scenario, config: ServingConfig, truth: bool) -> float:
    factor = scenario.truth_factor(config.instance_type) if truth else 1.0
    curve = scenario.declared_curve(config.instance_type, config.variant)
    key = (curve, factor, config.max_batch, config.max_delay_ms, scenario.slo_ms)
    if key not in _CAPACITY_CACHE:
        latency = ReplicaLatency(curve.scaled(factor), config.max_batch, config.max_delay_ms)
        _CAPACITY_CACHE[key] = latency.capacity_at(scenario.slo_ms)
    return _CAPACITY_CACHE[key]


def default_initial_config(scenario: Scenario) -> ServingConfig:
    """The workload before tuning, when no Deployment is given: the most accurate variant
    on the most expensive candidate type it has a profile for, on-demand, batching at
    its lower bound (usually off)."""
    variants = sorted(scenario.variants(), key=lambda v: -(v.accuracy or 0.0))
    allowed = {t.name for t in scenario.allowed_types()}
    for variant in variants:
        names = [p.instance_type for p in variant.profiles if p.instance_type in allowed]
        if names:
            name = max(names, key=lambda n: scenario.instance(n).on_demand_hourly)
            bmin, _ = scenario.batch_bounds()
            dmin, _ = scenario.delay_bounds_ms()
            return ServingConfig(name, "on-demand", variant.name, bmin, dmin)
    raise ValueError("no variant has a profile on an allowed instance type")


def initial_config_from_workload(
    scenario: Scenario, deployment: Mapping[str, Any]
) -> ServingConfig:
    """The configuration a Deployment manifest runs: pool/instance type from its
    nodeSelector, variant from its image/env, batching from the batching env vars."""
    pod = deployment.get("spec", {}).get("template", {}).get("spec", {})
    selector = pod.get("nodeSelector") or {}
    containers = pod.get("containers") or [{}]
    container = containers[0]
    env = {e.get("name"): str(e.get("value", "")) for e in container.get("env") or []}
    fallback = default_initial_config(scenario)
    placement = scenario.catalog.placement
    instance = selector.get("node.kubernetes.io/instance-type")
    pool = selector.get(placement.pool_label)
    if not instance and pool:
        instance = next(
            (t.name for t in scenario.catalog.spec.instance_types if t.pool == pool), None
        )
    capacity = placement.capacity_type_of(selector) or "on-demand"
    variant = fallback.variant
    for v in scenario.spec.variants or []:
        if v.image and v.image == container.get("image"):
            variant = v.name
            break
        if v.env and all(env.get(e.name) == e.value for e in v.env):
            variant = v.name
            break
    names = scenario.spec.batching.env
    batch = _int(env.get(names.max_batch_size), fallback.max_batch)
    delay_us = _int(env.get(names.max_queue_delay_microseconds), int(fallback.max_delay_ms * 1000))
    return ServingConfig(
        instance or fallback.instance_type, capacity, variant, batch, delay_us / 1000
    )


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def replicas_for(rate_rps: float, capacity_rps: float) -> int:
    """Replicas needed to carry ``rate_rps`` at ``capacity_rps`` each (at least 1)."""
    if capacity_rps <= 0:
        raise ValueError("capacity must be > 0")
    return max(1, math.ceil(rate_rps / capacity_rps - 1e-9))
