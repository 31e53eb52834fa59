"""servingopt.guard: policy and safety between the planner and the cluster (pure).

Karpenter style: :func:`decide` returns a :class:`Verdict` holding commands; the
controller executes them and nothing here does I/O or reads a clock. The configurations
it compares are :class:`servingopt.values.ServingConfig`.
"""

from .core import GuardInput, decide, in_any_window, in_window, learning_since, settle
from .types import (
    ApplyConfig,
    Command,
    GuardMemory,
    ReleaseWorkload,
    RemoveOwnedHpa,
    Verdict,
)

__all__ = [
    "ApplyConfig",
    "Command",
    "GuardInput",
    "GuardMemory",
    "ReleaseWorkload",
    "RemoveOwnedHpa",
    "Verdict",
    "decide",
    "in_any_window",
    "in_window",
    "learning_since",
    "settle",
]
