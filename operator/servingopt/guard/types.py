"""The guard's vocabulary: its memory, and the commands and verdict it returns.

The configurations it compares (:class:`~servingopt.values.ServingConfig`) and the
planner's :class:`~servingopt.values.Proposal` are values of the ground floor.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from servingopt.values import ServingConfig

Outcome = Literal["Applied", "Recommended", "Held", "Refused", "RolledBack", "Unchanged", "Off"]


@dataclass(frozen=True)
class GuardMemory:
    """What the guard remembers between decisions (persisted on the ModelServing)."""

    last_change_at: float | None = None
    last_good: ServingConfig | None = None
    breach_since: float | None = None
    blocked: ServingConfig | None = None
    blocked_until: float | None = None
    serving_since: float | None = None
    """First time the last rolling change was seen rolled out: its pods served alone since."""
    rolled_at: float | None = None
    """Time of the last change that rolled the pods (an HPA-only change does not): what
    is learned about the pods' configuration counts from its rollout."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in (
            "last_change_at",
            "breach_since",
            "blocked_until",
            "serving_since",
            "rolled_at",
        ):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        for name in ("last_good", "blocked"):
            config = getattr(self, name)
            if config is not None:
                out[name] = config.to_dict()
        if self.last_change_at is not None:
            out["rolled_at"] = self.rolled_at  # null too: "changed, but never rolled"
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
            # memories written before HPA-only changes were told apart: every change rolled
            rolled_at=number("rolled_at") if "rolled_at" in data else number("last_change_at"),
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
    payback: str = ""
    """The change's saving over the payback horizon against its rollout's cost, when
    the guard weighed them ("" otherwise)."""
