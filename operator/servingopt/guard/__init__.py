"""servingopt.guard: policy and safety between the planner and the cluster (pure).

Karpenter style: :func:`decide` returns a :class:`Verdict` holding commands; the
controller executes them and nothing here does I/O or reads a clock.
"""

from .core import GuardInput, decide, in_any_window, in_window, learning_since, settle
from .types import (
    ApplyConfig,
    Command,
    GuardMemory,
    Proposal,
    ReleaseWorkload,
    RemoveOwnedHpa,
    ServingConfig,
    Verdict,
    canonical_behavior,
)

__all__ = [
    "ApplyConfig",
    "Command",
    "GuardInput",
    "GuardMemory",
    "Proposal",
    "ReleaseWorkload",
    "RemoveOwnedHpa",
    "ServingConfig",
    "Verdict",
    "canonical_behavior",
    "decide",
    "in_any_window",
    "in_window",
    "learning_since",
    "settle",
]
