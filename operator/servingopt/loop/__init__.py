"""servingopt.loop: the one pure observe -> plan -> settle -> guard -> proposal step.

The kopf reconcile, the replay (``servingopt simulate`` / ``bench``) and ``servingopt
plan`` all call :func:`step` with a :class:`LoopInput` they built from their own world
(the cluster and Prometheus, the replay's record, a history CSV), so the replay grades
the code that ships. See ``docs/decision-engine.md`` ("One loop").
"""

from .core import (
    PLANNER_FAILED,
    LoopInput,
    LoopOutput,
    Planner,
    attribution_start,
    corrections_from_dict,
    corrections_to_dict,
    exception_summary,
    guard_input,
    kept,
    observation,
    proposal,
    running_config,
    step,
)

__all__ = [
    "PLANNER_FAILED",
    "LoopInput",
    "LoopOutput",
    "Planner",
    "attribution_start",
    "corrections_from_dict",
    "corrections_to_dict",
    "exception_summary",
    "guard_input",
    "kept",
    "observation",
    "proposal",
    "running_config",
    "step",
]
