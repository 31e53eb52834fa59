"""The decision engine: pure optimizers and :func:`plan` (numpy only, no I/O, no clock).

* :func:`plan` — the cheapest configuration meeting the SLO, as a :class:`Decision`.
* :class:`Observation` — what the planner knows about the running system.
* :mod:`~servingopt.optimize.forecast`, :mod:`~servingopt.optimize.traffic` — demand.
* :mod:`~servingopt.optimize.perfgrid` — vectorised capacity at the SLO.
* :mod:`~servingopt.optimize.autoscaling` — HPA target, bounds, behavior, evaluator hook.
* :mod:`~servingopt.optimize.learning` — profile corrections from observed p99.

See ``docs/decision-engine.md``.
"""

from servingopt.optimize.autoscaling import (
    AutoscalingCandidate,
    Evaluation,
    Evaluator,
    replay_with_model,
)
from servingopt.optimize.decision import Alternative, CacheDecision, Decision
from servingopt.optimize.planner import plan
from servingopt.values import Observation, RunningConfig

__all__ = [
    "Alternative",
    "AutoscalingCandidate",
    "CacheDecision",
    "Decision",
    "Evaluation",
    "Evaluator",
    "Observation",
    "RunningConfig",
    "plan",
    "replay_with_model",
]
