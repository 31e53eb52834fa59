"""The guard's vocabulary: configurations, proposals, memory, and the commands it returns."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

Outcome = Literal["Applied", "Recommended", "Held", "Refused", "RolledBack", "Unchanged", "Off"]


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

    def placement(self) -> tuple[str | None, str | None, str | None]:
        return self.instance_type, self.pool, self.capacity_type

    def summary(self) -> str:
        """One line for history, events and logs."""
        parts = [f"{self.instance_type or '?'}/{self.capacity_type or '?'}"]
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


@dataclass(frozen=True)
class GuardMemory:
    """What the guard remembers between decisions (persisted on the ModelServing)."""

    last_change_at: float | None = None
    last_good: ServingConfig | None = None
    breach_since: float | None = None
    blocked: ServingConfig | None = None
    blocked_until: float | None = None
    serving_since: float | None = None
    """First time the last change was seen rolled out: its pods served alone since."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("last_change_at", "breach_since", "blocked_until", "serving_since"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        for name in ("last_good", "blocked"):
            config = getattr(self, name)
            if config is not None:
                out[name] = config.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GuardMemory:
        def config(key: str) -> ServingConfig | None:
            raw = data.get(key)
            return ServingConfig.from_dict(raw) if isinstance(raw, dict) else None

        def number(key: str) -> float | None:
            raw = data.get(key)
            return float(raw) if isinstance(raw, int | float) else None

        return cls(
            last_change_at=number("last_change_at"),
            last_good=config("last_good"),
            breach_since=number("breach_since"),
            blocked=config("blocked"),
            blocked_until=number("blocked_until"),
            serving_since=number("serving_since"),
        )

    def evolve(self, **changes: Any) -> GuardMemory:
        return replace(self, **changes)


# Commands: the guard decides, the controller executes.


@dataclass(frozen=True)
class ApplyConfig:
    """Write ``config`` to the workload and its HPA."""

    config: ServingConfig


@dataclass(frozen=True)
class RemoveOwnedHpa:
    """Delete the HPA servingopt created (mode Off)."""


@dataclass(frozen=True)
class ReleaseWorkload:
    """Give up ownership of the pod-template fields, keeping their values (mode Off)."""


Command = ApplyConfig | RemoveOwnedHpa | ReleaseWorkload


@dataclass(frozen=True)
class Verdict:
    """The guard's answer: what to do, why, and what to remember."""

    outcome: Outcome
    reason: str
    message: str
    commands: tuple[Command, ...] = ()
    memory: GuardMemory = field(default_factory=GuardMemory)
    target: ServingConfig | None = None  # the configuration applied or rolled back to
