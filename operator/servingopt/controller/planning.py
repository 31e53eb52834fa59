"""Between the live world and the planner (pure): Observation in, Proposal out.

:func:`observation` turns a metrics sample, the configuration running now and what
the operator remembers (learned corrections, the time of its last change) into the
planner's :class:`~servingopt.optimize.observation.Observation`. :func:`proposal`
turns the planner's Decision into the guard's :class:`~servingopt.guard.Proposal`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from servingopt.api.modelserving import ModelServingSpec
from servingopt.guard.types import Proposal, ServingConfig, canonical_behavior
from servingopt.metrics.source import MetricsSample
from servingopt.model import ProfileCorrection
from servingopt.optimize.decision import Decision
from servingopt.optimize.observation import CorrectionKey, Observation, RunningConfig


def running_config(config: ServingConfig, replicas: int | None) -> RunningConfig:
    delay = config.max_queue_delay_us
    return RunningConfig(
        instance_type=config.instance_type,
        variant=config.variant,
        capacity_type=config.capacity_type,
        replicas=replicas,
        max_batch_size=config.max_batch_size,
        max_queue_delay_ms=delay / 1000.0 if delay is not None else None,
        cache_enabled=config.cache_enabled,
        cache_size_mib=config.cache_size_mib,
    )


def observation(
    sample: MetricsSample,
    current: ServingConfig,
    replicas: int | None,
    *,
    since: float | None,
    corrections: Mapping[CorrectionKey, ProfileCorrection],
    namespace_spend_hourly: float = 0.0,
) -> Observation:
    """The planner's view. Intervals after ``since`` (the last change, or all when
    servingopt never changed the workload) are attributed to the current config, so the
    planner can compare observed p99 with its prediction and learn; each with the
    replicas that served it (the current count where Prometheus has none)."""
    history = sample.demand_history
    times = np.array([t for t, _ in history], dtype=np.float64)
    rps = np.array([v for _, v in history], dtype=np.float64)
    p99_by_time = dict(sample.p99_history)
    p99 = np.array([p99_by_time.get(t, np.nan) for t, _ in history], dtype=np.float64)
    replicas_by_time = dict(sample.replicas_history)
    served = [replicas_by_time.get(t, float(replicas or 0)) for t, _ in history]
    attributed = [since is None or t >= since for t in times]
    label = current.instance_type or ""
    variant = current.variant or ""
    return Observation(
        timestamps_s=times,
        requests_per_second=rps,
        p99_latency_ms=p99 if history else np.zeros(0),
        replicas=np.array(
            [n if n > 0 and a else np.nan for n, a in zip(served, attributed, strict=True)],
            dtype=np.float64,
        ),
        instance_types=tuple(label if a else "" for a in attributed),
        variants=tuple(variant if a else "" for a in attributed),
        max_batch_sizes=np.array(
            [
                float(current.max_batch_size) if current.max_batch_size and a else np.nan
                for a in attributed
            ],
            dtype=np.float64,
        ),
        demand_rps=None if history else sample.request_rate,
        current=running_config(current, replicas),
        corrections=dict(corrections),
        namespace_spend_hourly=namespace_spend_hourly,
    )


def proposal(decision: Decision, spec: ModelServingSpec) -> Proposal | None:
    """The Decision as a configuration to apply (None when there is no configuration)."""
    if decision.instance_type is None or decision.capacity_type is None:
        return None
    batching = spec.batching.enabled
    caching = spec.caching.mode != "Off"
    config = ServingConfig(
        instance_type=decision.instance_type,
        pool=decision.pool,
        capacity_type=decision.capacity_type,
        variant=decision.variant if spec.variants else None,
        min_replicas=decision.min_replicas,
        max_replicas=decision.max_replicas,
        max_batch_size=decision.max_batch_size if batching else None,
        max_queue_delay_us=round(decision.max_queue_delay_ms * 1000) if batching else None,
        scaling_target=round(decision.target_value, 3),
        behavior=canonical_behavior(dict(decision.behavior)),
        cache_enabled=decision.cache.enabled if caching else None,
        cache_size_mib=decision.cache.size_mib if caching and decision.cache.enabled else None,
    )
    return Proposal(
        config=config,
        hourly_cost=decision.hourly_cost,
        slo_feasible=decision.slo_feasible,
        p99_latency_ms=decision.p99_latency_ms,
        replicas=decision.replicas,
        reasons=tuple(decision.reasons),
    )


def alternatives(decision: Decision) -> list[dict[str, Any]]:
    return [a.to_json() for a in decision.alternatives]


# Stored rounded, with the evidence count capped: the annotation then only changes when
# what was learned changes, and an unchanged situation sends no write.
STORED_FACTOR_DIGITS = 3
STORED_OBSERVATIONS_CAP = 20


def corrections_to_dict(corrections: Mapping[CorrectionKey, ProfileCorrection]) -> dict[str, Any]:
    return {
        f"{itype}|{variant}": {
            "factor": round(c.factor, STORED_FACTOR_DIGITS),
            "observations": min(c.observations, STORED_OBSERVATIONS_CAP),
        }
        for (itype, variant), c in sorted(corrections.items())
    }


def corrections_from_dict(data: Mapping[str, Any]) -> dict[CorrectionKey, ProfileCorrection]:
    out: dict[CorrectionKey, ProfileCorrection] = {}
    for key, raw in data.items():
        itype, _, variant = key.partition("|")
        try:
            out[(itype, variant)] = ProfileCorrection(
                factor=float(raw["factor"]), observations=int(raw.get("observations", 0))
            )
        except (KeyError, TypeError, ValueError):
            continue
    return out
