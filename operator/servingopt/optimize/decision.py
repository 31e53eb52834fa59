"""The planner's output: a frozen :class:`Decision` and its stable JSON form."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from servingopt.model import ProfileCorrection
from servingopt.values import CorrectionKey


def _num(value: float | None, digits: int = 3) -> float | None:
    """JSON-safe rounding (inf and NaN become null)."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


@dataclass(frozen=True)
class Alternative:
    """A configuration considered and not chosen."""

    instance_type: str
    variant: str
    capacity_type: str | None
    hourly_cost: float | None
    p99_latency_ms: float | None
    replicas: int | None
    rejected: str

    def to_json(self) -> dict[str, Any]:
        return {
            "instanceType": self.instance_type,
            "variant": self.variant,
            "capacityType": self.capacity_type,
            "hourlyCost": _num(self.hourly_cost, 4),
            "p99LatencyMs": _num(self.p99_latency_ms, 2),
            "replicas": self.replicas,
            "rejected": self.rejected,
        }


@dataclass(frozen=True)
class CacheDecision:
    enabled: bool
    size_mib: int | None = None
    hit_rate: float = 0.0
    load_reduction: float = 0.0  # fraction of requests the cache answers
    hourly_saving: float = 0.0  # replica cost saved by the lighter load
    hourly_cost: float = 0.0  # memory share of the cache, priced from the instance

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"enabled": self.enabled}
        if self.enabled:
            out["sizeMiB"] = self.size_mib
        out["hitRate"] = _num(self.hit_rate, 3)
        out["loadReduction"] = _num(self.load_reduction, 3)
        out["hourlySaving"] = _num(self.hourly_saving, 4)
        out["hourlyCost"] = _num(self.hourly_cost, 4)
        return out


@dataclass(frozen=True)
class Decision:
    """The cheapest configuration found that meets the SLO (or the least bad one).

    ``slo_feasible`` false means no allowed configuration meets the SLO; the other
    fields then describe the least-bad configuration (or are None when there is no
    configuration at all) and ``reasons`` say what bound it.
    """

    slo_feasible: bool
    instance_type: str | None
    pool: str | None
    capacity_type: str | None
    variant: str | None
    min_replicas: int
    max_replicas: int
    scaling_metric: str
    scaling_metric_type: str
    target_rps_per_replica: float
    target_value: float  # in the unit of scaling_metric_type
    behavior: Mapping[str, Any]
    max_batch_size: int
    max_queue_delay_ms: float
    cache: CacheDecision
    p99_latency_ms: float | None
    capacity_per_replica_rps: float
    hourly_cost: float
    replicas: int
    demand_rps: float
    utilisation: float
    on_demand_replicas: int
    spot_replicas: int
    interruption_cost_hourly: float
    traffic: str
    forecast_method: str
    reasons: tuple[str, ...]
    alternatives: tuple[Alternative, ...]
    corrections: Mapping[CorrectionKey, ProfileCorrection] = field(default_factory=dict)
    running_hourly_cost: float | None = None
    """$/h of the running configuration at its replicas, priced as this plan is priced
    (whole nodes, the same spot mix), so a saving compares like with like (None: the
    running configuration is not a candidate, or its replicas are unknown)."""
    model_error: float | None = None
    """How wrong the model has been: a high quantile of the relative capacity error
    measured by learning (None: no evidence yet). Sets the HPA target's margin and the
    guard's risk of a worse configuration."""

    def to_json(self) -> dict[str, Any]:
        """The ``servingopt plan -o json`` contract (camelCase; extra fields allowed)."""
        return {
            "sloFeasible": self.slo_feasible,
            "instanceType": self.instance_type,
            "pool": self.pool,
            "capacityType": self.capacity_type,
            "variant": self.variant,
            "replicas": {"min": self.min_replicas, "max": self.max_replicas},
            "autoscaling": {
                "metric": self.scaling_metric,
                "metricType": self.scaling_metric_type,
                "targetRequestsPerSecondPerReplica": _num(self.target_rps_per_replica, 2),
                "targetValue": _num(self.target_value, 2),
                "behavior": dict(self.behavior),
                "traffic": self.traffic,
            },
            "batching": {
                "maxBatchSize": self.max_batch_size,
                "maxQueueDelayMs": _num(self.max_queue_delay_ms, 3),
            },
            "cache": self.cache.to_json(),
            "predicted": {
                "p99LatencyMs": _num(self.p99_latency_ms, 2),
                "capacityPerReplicaRps": _num(self.capacity_per_replica_rps, 2),
                "hourlyCost": _num(self.hourly_cost, 4),
                "replicas": self.replicas,
                "demandRps": _num(self.demand_rps, 2),
                "utilization": _num(self.utilisation, 3),
                "forecast": self.forecast_method,
                "modelError": None if self.model_error is None else _num(self.model_error, 3),
            },
            "spot": {
                "onDemandReplicas": self.on_demand_replicas,
                "spotReplicas": self.spot_replicas,
                "interruptionCostHourly": _num(self.interruption_cost_hourly, 4),
            },
            "reasons": list(self.reasons),
            "alternatives": [a.to_json() for a in self.alternatives],
            "corrections": [
                {"instanceType": k[0], "variant": k[1], "factor": _num(c.factor, 4)}
                for k, c in sorted(self.corrections.items())
            ],
        }
