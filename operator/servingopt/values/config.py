"""The serving configuration and what the planner proposes: the values every layer passes.

:class:`ServingConfig` is everything servingopt sets on a workload; the manifest
builders write it (``kube/``), the reader reads it back, the guard compares two of them
and the loop turns a plan into one. :class:`Proposal` is a configuration with what the
planner predicts for it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from .mix import SpotShare


@dataclass(frozen=True)
class ServingConfig:
    """Everything servingopt sets on a workload. ``None``: not set / not known."""

    instance_type: str | None = None
    pool: str | None = None
    capacity_type: str | None = None
    variant: str | None = None
    min_replicas: int | None = None
    max_replicas: int | None = None
    max_batch_size: int | None = None
    max_queue_delay_us: int | None = None
    scaling_target: float | None = None
    behavior: str = ""  # HPA v2 behavior as canonical JSON ("" = none)
    cache_enabled: bool | None = None
    cache_size_mib: int | None = None
    max_spot_percent: int | None = None
    """A spot capacity type with an on-demand part: the policy's largest spot share."""
    on_demand_base: int | None = None
    """... and the replicas kept on-demand whatever the share (None: all spot)."""

    def spot_share(self) -> SpotShare | None:
        """The on-demand/spot split this configuration runs (None: one capacity type)."""
        if self.capacity_type != "spot" or self.max_spot_percent is None:
            return None
        return SpotShare(self.max_spot_percent, self.on_demand_base or 0)

    def placement(self) -> tuple[str | None, str | None, str | None]:
        return self.instance_type, self.pool, self.capacity_type

    def rolls_pods_from(self, other: ServingConfig) -> bool:
        """Whether going from ``other`` to this configuration changes the pod template
        (a rolling update); bounds, target and behavior of the HPA alone do not."""
        return self.pod_template() != other.pod_template()

    def pod_template(self) -> tuple[object, ...]:
        """The fields that reach the pod template (placement, variant, batching, cache)."""
        return (
            *self.placement(),
            self.max_spot_percent,
            self.on_demand_base,
            self.variant,
            self.max_batch_size,
            self.max_queue_delay_us,
            self.cache_enabled,
            self.cache_size_mib,
        )

    def summary(self) -> str:
        """One line for history, events and logs."""
        parts = [f"{self.instance_type or '?'}/{self.capacity_type or '?'}"]
        share = self.spot_share()
        if share is not None:
            parts[0] += f"<={share.max_spot_percent}%+{share.on_demand_base}od"
        if self.variant:
            parts.append(f"variant={self.variant}")
        if self.min_replicas is not None:
            parts.append(f"replicas={self.min_replicas}..{self.max_replicas}")
        if self.max_batch_size is not None:
            parts.append(f"batch={self.max_batch_size}")
        if self.max_queue_delay_us is not None:
            parts.append(f"delay={self.max_queue_delay_us}us")
        if self.cache_enabled:
            parts.append(f"cache={self.cache_size_mib}MiB")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and v != ""}

    def changes_from(self, other: ServingConfig) -> list[str]:
        """Field-by-field differences from ``other`` (for logs)."""
        out = []
        for f in fields(self):
            before, after = getattr(other, f.name), getattr(self, f.name)
            if before != after:
                shown = (before, after) if f.name != "behavior" else ("…", "…")
                out.append(f"{f.name}: {shown[0]} -> {shown[1]}")
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServingConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def behavior_dict(self) -> dict[str, Any] | None:
        return json.loads(self.behavior) if self.behavior else None


def canonical_behavior(behavior: dict[str, Any] | None) -> str:
    """HPA behavior as the string ServingConfig stores (stable key order)."""
    return json.dumps(behavior, sort_keys=True, separators=(",", ":")) if behavior else ""


@dataclass(frozen=True)
class Proposal:
    """What the planner recommends, with what it predicts."""

    config: ServingConfig
    hourly_cost: float
    slo_feasible: bool = True
    p99_latency_ms: float | None = None
    replicas: int | None = None
    reasons: tuple[str, ...] = ()


def held_target(value: float, utilization: bool = False) -> float:
    """An HPA target as the HPA object holds it once written: a whole percent for CPU
    utilisation, else the quantity servingopt writes (three decimals, six significant
    digits). What the operator reads back after writing ``value``, and what a replay
    of the operator must take as running."""
    if utilization:
        return float(round(value))
    return float(f"{round(value, 3):g}")
